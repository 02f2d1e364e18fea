"""`oktasync sync NAME [--wait]` and `oktasync runs NAME [--json]` (distributed mode).

`sync` creates a run now (the same claim the dispatcher makes: refused while one is active) and
enqueues its start on the broker; with --wait it follows the run in the database.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
import sqlalchemy as sa

from worker.commands.tenant import _get, _when, open_sessions


def run_info(run: Any) -> dict[str, Any]:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {"id": run.id, "state": run.state, "kind": run.kind, "reason": (run.plan or {}).get("reason"),
            "created_at": _when(run.created_at),
            "started_at": _when(run.started_at), "finished_at": _when(run.finished_at),
            "duration_seconds": duration, "counts": run.counts or {}, "warnings": run.warnings or [],
            "error": run.error}


def stream_progress(s: Any, run_id: int) -> dict[str, int]:
    from worker.store.tables import SyncStream

    t = SyncStream.__table__
    rows = s.execute(sa.select(t.c.state, sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.pages), 0),
                               sa.func.coalesce(sa.func.sum(t.c["items"]), 0))
                     .where(t.c.run_id == run_id).group_by(t.c.state)).all()
    out = {"lists": 0, "done": 0, "pages": 0, "items": 0}
    for st, n, pages, items in rows:
        out["lists"] += n
        out["pages"] += int(pages)
        out["items"] += int(items)
        if st in ("done", "skipped", "failed"):
            out["done"] += n
    return out


# Seconds a run may stay queued before --wait says that no worker seems to be taking it.
NO_WORKER_HINT_AFTER = 10.0
NO_WORKER = ("no worker has taken the run yet: is `celery -A worker worker -Q sync` running, with the same "
             "OKTASYNC_BROKER_URL and OKTASYNC_DATABASE_URL?")


def wait_for_run(sessions: Any, run_id: int, *, timeout: float | None, out: Any = None) -> Any:
    """Follow a run until it ends, printing progress; returns the final SyncRun row."""
    from worker.store.tables import SyncRun

    out = out or sys.stderr
    tty = out.isatty()
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    last_line = ""
    hinted = False
    while True:
        with sessions() as s:
            run = s.get(SyncRun, run_id, populate_existing=True)
            if run is None:
                raise click.ClickException(f"run {run_id} disappeared (tenant removed?)")
            prog = stream_progress(s, run_id)
        line = (f"run {run_id} {run.state}: lists {prog['done']}/{prog['lists']}  pages {prog['pages']}  "
                f"items {prog['items']}")
        if line != last_line:
            out.write(("\r\033[K" + line) if tty else (line + "\n"))
            out.flush()
            last_line = line
        if run.state in ("succeeded", "failed"):
            if tty:
                out.write("\n")
            return run
        idle = run.state == "queued" and time.monotonic() - started >= NO_WORKER_HINT_AFTER
        if idle and not hinted:  # otherwise --wait waits silently for a worker that may not exist
            out.write(("\n" if tty else "") + NO_WORKER + "\n")
            out.flush()
            last_line, hinted = "", True
        if deadline is not None and time.monotonic() > deadline:
            raise click.ClickException(f"run {run_id} still {run.state} after {timeout:g}s (it goes on; "
                                       f"see `oktasync runs`){'; ' + NO_WORKER if idle else ''}")
        time.sleep(1.0)


def start_run_now(s: Any, tenant_id: int, kind: str) -> tuple[int | None, Any]:
    """Create a run of `kind` now (the dispatcher's claim: refused while one is active) and enqueue
    its start: (run id, None), or (None, the active run that refused it)."""
    from worker.config import ConfigError
    from worker.engine import steps
    from worker.engine.sender import CelerySender
    from worker.store import runs

    try:  # the Celery app reads its settings on import: refuse bad ones before creating a run
        from worker.app import app
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    runs.begin_write(s)
    run_id = runs.create_run(s, tenant_id, kind)
    s.commit()
    if run_id is None:
        return None, runs.active_run(s, tenant_id)
    try:
        CelerySender(app).enqueue(steps.START, [run_id])
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds for a broker it cannot reach
        # Left queued, the run would block the next `oktasync sync` until the reaper fails it.
        runs.begin_write(s)
        runs.fail(s, run_id, f"could not enqueue the run: {exc}")
        s.commit()
        from kombu.utils.url import maybe_sanitize_url

        raise click.ClickException(
            f"cannot reach the broker at {maybe_sanitize_url(app.conf.broker_url)} ($OKTASYNC_BROKER_URL): "
            f"{str(exc).rstrip('.')}; check that Redis runs and that OKTASYNC_BROKER_URL is the one the workers use "
            f"(run {run_id} was marked failed)") from None
    return run_id, None


@click.command("sync")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit 1 if it fails.")
@click.option("--timeout", type=float, default=None, help="With --wait: give up waiting after this many seconds.")
@click.option("--full", is_flag=True, help="A full sync, even when the tenant's change cursor allows an incremental one.")
def sync(name: str, wait: bool, timeout: float | None, full: bool) -> None:
    """Start a sync of tenant NAME now (workers on the `sync` queue run it): incremental when the
    tenant has a complete sync and a usable change cursor, else full (`runs` says which and why)."""
    from worker.commands.report import hint_for, kind_line, summary_lines

    sessions = open_sessions()
    with sessions() as s:
        tenant = _get(s, name)
        s.commit()
        run_id, active = start_run_now(s, tenant.id, "full" if full else "incremental")
        if active is not None:
            run_id = active.id
            click.echo(f"tenant {name} already has run {run_id} in progress" + ("; following it" if wait else ""))
        else:
            click.echo(f"started run {run_id} of tenant {name}")
    if not wait or run_id is None:
        return
    run = wait_for_run(sessions, run_id, timeout=timeout)
    if run.state != "succeeded":
        click.echo(f"run {run.id} failed: {run.error}", err=True)
        click.echo(f"what to do: {hint_for(run.error, tenant=name)}", err=True)
        sys.exit(1)
    click.echo(kind_line(run.kind, (run.plan or {}).get("reason"), run.counts or {}))
    for line in summary_lines(run.counts or {}, run.warnings or []):
        click.echo(line)


@click.command("runs")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, newest first.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
def runs(name: str, as_json: bool, limit: int) -> None:
    """List the runs of tenant NAME: id, kind (full, incremental, verify), state, timings, counts,
    warnings; for a verify run its drift (counts.drift in --json); for a run still active, how far
    it got (lists done/opened, pages, items)."""
    from worker.commands.verify import drift_note
    from worker.store.tables import ACTIVE_RUN_STATES, SyncRun

    with open_sessions()() as s:
        tenant = _get(s, name)
        rows = [run_info(r) for r in s.execute(sa.select(SyncRun).where(SyncRun.tenant_id == tenant.id)
                                               .order_by(SyncRun.id.desc()).limit(limit)).scalars()]
        for r in rows:  # counts exist once a run is finalized; until then, how far it got
            if r["state"] in ACTIVE_RUN_STATES:
                r["progress"] = stream_progress(s, r["id"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no runs of {name} yet")
        return
    click.echo(f"{'RUN':>6} {'KIND':11} {'STATE':11} {'STARTED':25} {'SECONDS':>8} {'RESOURCES':>9} {'GRANTS':>8}  NOTES")
    for r in rows:
        c = r["counts"]
        n = len(r["warnings"])
        warned = f"{n} warning{'' if n == 1 else 's'}" if n else ""
        notes = r["error"] or "; ".join(x for x in (drift_note(c), warned) if x)
        if "progress" in r:
            p = r["progress"]
            notes = f"lists {p['done']}/{p['lists']}, pages {p['pages']}, items {p['items']}"
        secs = f"{r['duration_seconds']:.1f}" if r["duration_seconds"] is not None else "-"
        click.echo(f"{r['id']:>6} {r['kind']:11} {r['state']:11} {r['started_at'] or '-':25} {secs:>8} "
                   f"{c.get('resources', '-'):>9} {c.get('grants', '-'):>8}  {notes}")
