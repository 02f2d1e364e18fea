"""`oktasync demo`: start a simulated Okta org (oktasim), sync it embedded, show what was found."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

SIM_TOKEN = "00sim-super-admin-token-0000000000000000000"
LISTEN = re.compile(r"oktasim listening on (http://\S+)")


def start_oktasim(users: int, groups: int, apps: int, seed: int, latency_ms: int,
                  window_seconds: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Run `python -m oktasim --port 0 ...` on loopback; returns the process and its URL."""
    cmd = [sys.executable, "-m", "oktasim", "--port", "0", "--users", str(users), "--groups", str(groups),
           "--apps", str(apps), "--seed", str(seed), "--latency-ms", str(latency_ms),
           "--window-seconds", f"{window_seconds:g}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = LISTEN.search(line)
    if not match:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise click.ClickException(f"the simulator did not start: {line.strip() or err.strip()[-500:]}")
    return proc, match.group(1)


def examples(file: str, limit: int = 5) -> list[str]:
    """A few grants from the synced file, as '<principal> has <entitlement>'."""
    import sqlalchemy as sa

    from worker.store.db import make_engine
    from worker.store.tables import GrantRow, ResourceRow, Tenant

    engine = make_engine(f"sqlite:///{file}")
    out: list[str] = []
    try:
        with engine.connect() as conn:
            run_id = conn.execute(sa.select(Tenant.current_run_id)).scalar()
            names = {}
            for kind in ("app", "group", "role"):
                row = conn.execute(sa.select(GrantRow.id, GrantRow.principal_type, GrantRow.principal_id,
                                             GrantRow.entitlement_id)
                                   .where(GrantRow.run_id == run_id, GrantRow.entitlement_id.like(f"{kind}:%"),
                                          GrantRow.expanded.is_(False)).limit(2)).all()
                for _gid, ptype, pid, ent in row:
                    for key in (f"{ptype}:{pid}", ent.rsplit(":", 1)[0]):
                        if key not in names:
                            names[key] = conn.execute(sa.select(ResourceRow.display_name).where(
                                ResourceRow.run_id == run_id, ResourceRow.id == key)).scalar() or key
                    out.append(f"{ptype} {names[f'{ptype}:{pid}']!r} has {ent} ({names[ent.rsplit(':', 1)[0]]!r})")
    finally:
        engine.dispose()
    return out[:limit]


@click.command("demo")
@click.option("--users", type=click.IntRange(1), default=300, show_default=True)
@click.option("--groups", type=click.IntRange(1), default=40, show_default=True)
@click.option("--apps", type=click.IntRange(1), default=15, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--latency-ms", type=click.IntRange(0), default=20, show_default=True,
              help="Simulated Okta latency per request.")
@click.option("--window-seconds", type=click.FloatRange(1), default=10, show_default=True,
              help="Length of the simulated rate-limit windows (Okta's are 60 s; per-window limits stay "
                   "Okta's, so a short window lets the demo finish quickly).")
@click.option("--file", default=None, help="SQLite file to sync into (default: a temporary file).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True)
def demo(users: int, groups: int, apps: int, seed: int, latency_ms: int, window_seconds: float,
         file: str | None, concurrency: int) -> None:
    """Sync a simulated Okta org (oktasim on a free loopback port) and show what was found."""
    from worker.commands.embedded_cli import progress_printer
    from worker.commands.report import hint_for, summary_lines
    from worker.connector import SyncOptions
    from worker.engine.embedded import EmbeddedError, run_embedded

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if file is None:
        tmp = tempfile.TemporaryDirectory(prefix="oktasync-demo-")
        file = str(Path(tmp.name) / "demo.db")
    click.echo(f"starting a simulated Okta org: {users} users, {groups} groups, {apps} apps (the inactive "
               "ones synced only with --sync-inactive-apps), "
               f"{latency_ms} ms latency, {window_seconds:g} s rate-limit windows ...")
    proc, url = start_oktasim(users, groups, apps, seed, latency_ms, window_seconds)
    try:
        click.echo(f"oktasim at {url}; syncing it embedded into {file}")
        show, tty = progress_printer()
        t0 = time.monotonic()
        try:
            result = run_embedded(url, {"api_token": SIM_TOKEN}, SyncOptions(sync_custom_roles=True, sync_secrets=True),
                                  file=file, concurrency=concurrency, on_progress=show,
                                  progress_every=1.0 if tty else 5.0)
        except EmbeddedError as exc:  # e.g. an unusable --file: exit 2 with the reason, no traceback
            raise click.UsageError(str(exc)) from None
        if tty:
            sys.stderr.write("\n")
        if result.state != "succeeded":
            click.echo(f"demo sync failed: {result.error}", err=True)
            click.echo(f"what to do: {hint_for(result.error)}", err=True)
            sys.exit(1)
        click.echo(f"\nsynced in {time.monotonic() - t0:.1f}s (run {result.run_id})")
        for line in summary_lines(result.counts, result.warnings):
            click.echo(line)
        p = result.progress
        click.echo(f"rate limit:   {p.pages} requests, {p.waits} limiter waits ({p.wait_seconds:.1f}s summed over parallel lists), "
                   f"{p.retries} retries{_sim_429s(url)}")
        sample = examples(file)
        if sample:
            click.echo("example grants:")
            for line in sample:
                click.echo(f"  {line}")
        if tmp is None:
            click.echo(f"\nexplore it: oktasync export --file {file} --format jsonl | head")
    finally:
        _stop(proc)
        if tmp is not None:
            tmp.cleanup()


def _sim_429s(url: str) -> str:
    try:
        import httpx

        stats: dict[str, Any] = httpx.get(f"{url}/__sim/stats", timeout=5).json()
    except Exception:  # noqa: BLE001 - decoration only
        return ""
    n = stats.get("throttled_total")
    return f", {n} answered 429 by the simulator" if n is not None else ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
