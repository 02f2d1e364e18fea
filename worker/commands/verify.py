"""`oktasync verify NAME` (distributed) and `oktasync verify --file F` (embedded): the drift check.

A verify run lists the org as a full sync does, into a scratch view that it compares with the
current one and then discards; the current view, the change cursor and the access-change log stay
as they are (worker/store/drift.py). Exit status: 0 no drift, 1 drift, 2 the check did not run or
did not finish (no complete sync to compare with, another run in progress, a failed run, bad input).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from worker.commands.cliopts import credential_options, credentials_from

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
TABLES = ("grants", "entitlements", "resources")
DIRECTIONS = ("missing", "extra", "changed")  # runs before `changed` existed lack it: 0
TEXT_LIMIT = 20  # ids listed per table and direction unless --limit says otherwise
CREDENTIAL_PARAMS = ("api_token", "okta_client_id", "okta_private_key", "okta_private_key_id")


def drift_of(counts: dict[str, Any]) -> dict[str, Any] | None:
    """The drift a verify run recorded (None for other runs, and for a verify not finished)."""
    drift = (counts or {}).get("drift")
    return drift if isinstance(drift, dict) else None


def has_drift(drift: dict[str, Any]) -> bool:
    return any(drift.get(t, {}).get(d) for t in TABLES for d in DIRECTIONS)


def drift_note(counts: dict[str, Any]) -> str:
    """One line for `oktasync runs`: `no drift`, or `drift: grants 2 missing, 1 extra, 0 changed; ...`."""
    drift = drift_of(counts)
    if drift is None:
        return ""
    if not has_drift(drift):
        return "no drift"
    parts = [f"{t} " + ", ".join(f"{drift[t].get(d, 0)} {d}" for d in DIRECTIONS) for t in TABLES
             if any(drift.get(t, {}).get(d) for d in DIRECTIONS)]
    return "drift: " + "; ".join(parts)


def report_lines(counts: dict[str, Any], limit: int) -> list[str]:
    """The human summary: what was compared, and per table how many ids are missing and extra,
    the first `limit` of each listed."""
    drift = drift_of(counts) or {}
    compared = ", ".join(f"{counts.get(t, 0)} {t}" for t in TABLES)
    lines = [f"compared:     {compared} listed from Okta with the current view (run {drift.get('view_run_id')})",
             "              missing = in Okta, not in the view; extra = in the view, not in Okta;",
             "              changed = in both, with different contents (e.g. renamed in Okta, not synced)"]
    for table in TABLES:
        got = drift.get(table, {})
        lines.append(f"{table + ':':13} " + ", ".join(f"{got.get(d, 0)} {d}" for d in DIRECTIONS))
        for direction in DIRECTIONS:
            ids = got.get(f"{direction}_ids") or []
            lines += [f"  {direction:8} {i}" for i in ids[:limit]]
            more = int(got.get(direction, 0)) - min(limit, len(ids))
            if more > 0:
                lines.append(f"  {direction:8} ... and {more} more" + (" (--limit, --json show more)"
                                                                      if len(ids) > limit else ""))
    return lines


def report_json(counts: dict[str, Any], limit: int | None, **about: Any) -> dict[str, Any]:
    drift = drift_of(counts) or {}
    out: dict[str, Any] = {**about, "drift": has_drift(drift), "view_run_id": drift.get("view_run_id"),
                           "compared": {t: counts.get(t, 0) for t in TABLES}}
    for table in TABLES:
        got = drift.get(table, {})
        out[table] = {**{d: got.get(d, 0) for d in DIRECTIONS},
                      **{f"{d}_ids": (got.get(f"{d}_ids") or [])[:limit] for d in DIRECTIONS}}
    return out


def _show(counts: dict[str, Any], warnings: list[str], limit: int | None, as_json: bool, title: str,
          **about: Any) -> int:
    """Print the result (warnings too: a list Okta refused shows as drift); the exit status."""
    drifted = has_drift(drift_of(counts) or {})
    if as_json:
        click.echo(json.dumps({**report_json(counts, limit, **about), "warnings": warnings}, indent=2))
    else:
        click.echo(f"{title}: {'DRIFT' if drifted else 'no drift'}")
        for line in report_lines(counts, TEXT_LIMIT if limit is None else limit):
            click.echo(line)
        for w in warnings:
            click.echo(f"warning:      {w}")
    return EXIT_DRIFT if drifted else EXIT_OK


def _given(ctx: click.Context, params: tuple[str, ...]) -> list[str]:
    """Of `params`, those set on the command line (not from the environment), as flags."""
    from click.core import ParameterSource

    return ["--" + p.replace("_", "-") for p in params
            if ctx.params.get(p) is not None and ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE]


@click.command("verify")
@click.argument("name", required=False)
@click.option("--file", "file", default=None,
              help="Embedded: check this SQLite file (of an earlier `oktasync --domain ... --file`) "
                   "instead of a tenant.")
@click.option("--domain", envvar="OKTASYNC_DOMAIN", default=None,
              help="Embedded: the org the file holds (default: the file's own). [env OKTASYNC_DOMAIN]")
@credential_options
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Embedded: requests in flight at once.")
@click.option("--rate-limit-share", type=click.FloatRange(0.01, 1.0), default=0.8, show_default=True,
              help="Embedded: share of each Okta rate limit the check may use.")
@click.option("--limit", type=click.IntRange(0), default=None,
              help=f"Ids listed per kind and direction (default {TEXT_LIMIT}; with --json all the run kept, "
                   "at most 1000).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout (progress stays on stderr).")
@click.option("--timeout", type=float, default=None, help="Distributed: give up waiting after this many seconds.")
@click.pass_context
def verify(ctx: click.Context, name: str | None, file: str | None, domain: str | None, concurrency: int,
           rate_limit_share: float, limit: int | None, as_json: bool, timeout: float | None,
           **creds: str | None) -> None:
    """Drift check: list the org as a full sync does and compare it with the current view, which
    stays as it is. Prints the grants (and entitlements, resources) missing from the view (in
    Okta, not in the view), extra in it (in the view, not in Okta) and changed (in both, with
    different contents: a group renamed in Okta and not synced, a grant's annotations).

    \b
      oktasync verify acme                      # tenant acme (workers on the `sync` queue run it)
      oktasync verify --file acme.db            # an embedded file, with the credentials it holds

    With --file, credentials given replace the ones the file holds, as a sync's do; the options
    are the ones the file was synced with. Refused while a sync of the tenant (or another oktasync
    on the file) is in progress; a verify already running is followed. Exit status: 0 no drift,
    1 drift, 2 the check did not run or failed. `oktasync runs NAME` lists verify runs with their
    result (docs/engine.md, "Drift check").
    """
    if bool(name) == bool(file):
        raise click.UsageError("give a tenant NAME (distributed) or --file FILE (embedded), not both" if name
                               else "give a tenant NAME (distributed) or --file FILE (embedded)")
    try:
        if file:
            code = _verify_file(file, domain, creds, concurrency, rate_limit_share, limit, as_json)
        else:
            embedded_only = _given(ctx, ("domain", *CREDENTIAL_PARAMS))
            if embedded_only:
                raise click.UsageError(f"{', '.join(embedded_only)} go with --file; a tenant's domain and "
                                       f"credentials are stored (`oktasync tenant update {name}`)")
            code = _verify_tenant(str(name), limit, as_json, timeout)
    except click.UsageError:
        raise
    except click.ClickException as exc:
        exc.exit_code = EXIT_ERROR  # 1 means drift
        raise
    ctx.exit(code)


def _verify_tenant(name: str, limit: int | None, as_json: bool, timeout: float | None) -> int:
    from worker.commands.report import hint_for
    from worker.commands.sync import run_info, start_run_now, wait_for_run
    from worker.commands.tenant import _get, open_sessions
    from worker.store.tables import VERIFY_KIND

    sessions = open_sessions()
    with sessions() as s:
        tenant = _get(s, name)
        if tenant.current_run_id is None:
            raise click.ClickException(f"tenant {name} has no complete sync to compare with; run "
                                       f"`oktasync sync {name} --wait` first")
        tenant_id = tenant.id
        s.commit()
        run_id, active = start_run_now(s, tenant_id, VERIFY_KIND)
        if active is not None and active.kind != VERIFY_KIND:
            raise click.ClickException(
                f"tenant {name} has a {active.kind} run in progress (run {active.id}, {active.state}); a verify "
                f"compares with a settled view: run it again when that one has finished (`oktasync runs {name}`)")
        if active is not None:
            run_id = active.id
            click.echo(f"tenant {name} already has verify run {run_id} in progress; following it", err=True)
        else:
            click.echo(f"started verify run {run_id} of tenant {name}", err=True)
    run = wait_for_run(sessions, int(run_id), timeout=timeout)
    if run.state != "succeeded":
        click.echo(f"verify run {run.id} failed: {run.error}", err=True)
        click.echo(f"what to do: {hint_for(run.error, tenant=name)}", err=True)
        return EXIT_ERROR
    info = run_info(run)
    return _show(run.counts or {}, list(run.warnings or []), limit, as_json, f"verify of {name} (run {run.id})",
                 tenant=name, run_id=run.id, finished_at=info["finished_at"], duration_seconds=info["duration_seconds"])


def _verify_file(file: str, domain: str | None, creds: dict[str, str | None], concurrency: int,
                 rate_limit_share: float, limit: int | None, as_json: bool) -> int:
    from worker.commands.embedded_cli import progress_printer
    from worker.commands.report import hint_for
    from worker.engine.embedded import EmbeddedError, verify_embedded
    from worker.okta.domain import InvalidDomain, normalize_domain

    if domain:
        try:
            normalize_domain(domain)
        except InvalidDomain as exc:
            raise click.BadParameter(str(exc), param_hint="--domain") from None
    credentials = credentials_from(*(creds[p] for p in CREDENTIAL_PARAMS), required=False)
    show, tty = progress_printer()
    try:
        result = verify_embedded(file, domain, credentials, concurrency=concurrency, rate_limit_share=rate_limit_share,
                                 on_progress=show, progress_every=1.0 if tty else 5.0)
    except EmbeddedError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the check was stopped; the file's view is unchanged", err=True)
        sys.exit(130)
    if tty:
        sys.stderr.write("\n")
    if result.state != "succeeded":
        click.echo(f"verify of {result.file} failed after {result.elapsed:.1f}s: {result.error}", err=True)
        click.echo(f"what to do: {hint_for(result.error)}", err=True)
        return EXIT_ERROR
    return _show(result.counts, result.warnings, limit, as_json, f"verify of {result.file} (run {result.run_id})",
                 file=result.file, run_id=result.run_id, duration_seconds=round(result.elapsed, 3))
