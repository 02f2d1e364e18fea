"""`oktasync tenant ...`: the orgs the distributed mode syncs (rows in the grant store).

The database is $OKTASYNC_DATABASE_URL; credentials are encrypted with $OKTASYNC_SECRET_KEY.
Beat's dispatcher reads these rows on every tick, so changes apply without restarting anything.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from worker.commands.cliopts import credential_options, credentials_from, options_from, sync_options
from worker.commands.tenant_settings import DEFAULT_INTERVAL, INTERVAL, OPTIONAL_INTERVAL, tenant_changes


def open_sessions(migrate_first: bool = False) -> Any:
    """Sessions on $OKTASYNC_DATABASE_URL; a click error (not a traceback) when it is unreachable,
    or (unless `migrate_first`) missing or without the schema."""
    from worker.commands.database import open_engine
    from worker.observability.metrics import missing_sqlite_file
    from worker.store.db import ENV_VAR, database_url, make_engine, make_session_factory

    url = database_url()
    if migrate_first:
        from worker.store.migrate import migrate

        engine = make_engine(url)
        try:
            migrate(engine=engine)
        except sa.exc.OperationalError as exc:
            raise click.ClickException(f"cannot open the database (${ENV_VAR}): {exc.orig}") from None
        return make_session_factory(engine)
    missing = missing_sqlite_file(url)
    if missing:  # connecting would create an empty file
        raise click.ClickException(f"no grant store at {missing}: set ${ENV_VAR} to the database the workers "
                                   "use, or create one with `oktasync db upgrade`")
    return make_session_factory(open_engine(url))


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def tenant_info(s: Any, t: Any) -> dict[str, Any]:
    from worker.store.queries import options_changed
    from worker.store.tables import SyncRun

    last = s.execute(sa.select(SyncRun).where(SyncRun.tenant_id == t.id).order_by(SyncRun.id.desc()).limit(1)
                     ).scalar_one_or_none()
    return {"name": t.name, "domain": t.domain, "auth_method": t.auth_method, "enabled": t.enabled,
            "interval": t.sync_interval, "next_sync_at": _when(t.next_sync_at),
            "incremental_interval": t.incremental_interval, "next_incremental_at": _when(t.next_incremental_at),
            "verify_interval": t.verify_interval, "next_verify_at": _when(t.next_verify_at), "options": t.options,
            "current_run": t.current_run_id, "last_run": last.id if last else None,
            "last_run_state": last.state if last else None,
            # the options changed since the last successful run: the next run must be a full sync
            "options_changed": options_changed(s, t.id)}


def _store_errors() -> tuple[type[BaseException], ...]:
    from worker.store.secrets import SecretKeyError
    from worker.store.tenants import TenantError

    return (TenantError, SecretKeyError)


@click.group()
def tenant() -> None:
    """Manage the Okta orgs (tenants) the distributed mode syncs on a schedule."""


def schedule_options(adding: bool) -> Any:
    """--interval, --incremental-interval and --verify-interval (`tenant add` and `update`)."""
    def decorate(f: Any) -> Any:
        for option in reversed((
                click.option("--interval", type=INTERVAL, default=DEFAULT_INTERVAL if adding else None,
                             show_default=adding, help="Seconds between the starts of two full syncs (the "
                             "reconciliation: everything is re-read)."),
                click.option("--incremental-interval", type=OPTIONAL_INTERVAL, default=None,
                             help="Seconds between incremental runs (only what changed, from the System Log), "
                             "shorter than --interval; 0 or 'off' turns them off"
                             + (" (the default)." if adding else ".")),
                click.option("--verify-interval", type=OPTIONAL_INTERVAL, default=None,
                             help="Seconds between drift checks (a full sync compared with the view; as many "
                             "requests as a full sync); 0 or 'off' turns them off"
                             + (" (the default)." if adding else ".")))):
            f = option(f)
        return f
    return decorate


def schedule_text(interval: int, incremental: int | None, verify: int | None) -> str:
    return (f"every {interval}s" + (f", incremental every {incremental}s" if incremental else "")
            + (f", drift check every {verify}s" if verify else ""))


@tenant.command("add")
@click.argument("name")
@click.option("--domain", required=True, help="The org's Okta domain, e.g. acme.okta.com.")
@credential_options
@sync_options
@schedule_options(adding=True)
@click.option("--paused", is_flag=True, help="Add it paused (no scheduled syncs until resumed).")
def add(name: str, domain: str, interval: int, incremental_interval: int | None, verify_interval: int | None,
        paused: bool, **flags: Any) -> None:
    """Add a tenant; its first sync (a full one) is due at once (unless --paused), then full syncs
    every --interval and, when turned on, incremental runs and drift checks at their intervals."""
    from worker.store.tenants import create_tenant

    creds = credentials_from(flags.pop("api_token"), flags.pop("okta_client_id"), flags.pop("okta_private_key"),
                             flags.pop("okta_private_key_id"))
    options = options_from(**flags)
    sessions = open_sessions(migrate_first=True)
    with sessions() as s:
        try:
            create_tenant(s, name, domain, creds or {}, options=options.to_dict(), sync_interval=interval,
                          incremental_interval=incremental_interval or None, verify_interval=verify_interval or None,
                          enabled=not paused)
            s.commit()
        except _store_errors() as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"added tenant {name} ({domain}), {schedule_text(interval, incremental_interval, verify_interval)}"
               f"{', paused' if paused else ''}")


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.option("--lagging", is_flag=True, help="Only tenants whose last success (full or incremental) is older "
              "than their shortest interval (full, or incremental when on), or that never succeeded; one line "
              "each with why; nothing when none lags.")
def list_(as_json: bool, lagging: bool) -> None:
    """List tenants with their schedule (full, incremental and drift check intervals, seconds; '-'
    is off), their next due run and their last run."""
    from worker.store.tenants import list_tenants

    if lagging:
        _list_lagging(as_json)
        return
    with open_sessions()() as s:
        rows = [tenant_info(s, t) for t in list_tenants(s)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no tenants; add one with `oktasync tenant add NAME --domain ... --api-token ...`")
        return
    click.echo(f"{'NAME':20} {'DOMAIN':32} {'STATE':7} {'FULL':>7} {'INCR':>6} {'VERIFY':>7} {'NEXT RUN':37} LAST RUN")
    for r in rows:
        last = f"{r['last_run']} {r['last_run_state']}" if r["last_run"] else "-"
        click.echo(f"{r['name']:20} {r['domain']:32} {'active' if r['enabled'] else 'paused':7} "
                   f"{r['interval']:>7} {r['incremental_interval'] or '-':>6} {r['verify_interval'] or '-':>7} "
                   f"{next_run(r):37} {last}")


def next_run(info: dict[str, Any]) -> str:
    """The next scheduled run and its kind: the earliest due time (a full sync first on a tie, as
    Beat claims them); "due full" for a tenant never synced."""
    if info["next_sync_at"] is None:
        return "due full"
    due = [(at, kind) for at, kind in ((info["next_sync_at"], "full"), (info["next_incremental_at"], "incremental"),
                                       (info["next_verify_at"], "verify")) if at is not None]
    at, kind = min(due, key=lambda d: d[0])  # ISO strings of one time zone sort as times
    return f"{at} {kind}"


def _list_lagging(as_json: bool) -> None:
    from worker.commands.tenant_lag import lagging, line
    from worker.store.tables import utcnow
    from worker.store.tenants import freshness

    with open_sessions()() as s:
        now = utcnow()
        rows = lagging(freshness(s), now)
    if as_json:
        click.echo(json.dumps([{"name": r.name, "reason": r.reason, "detail": r.detail, "interval": r.interval,
                                "last_success": _when(r.last_success)} for r in rows], indent=2))
        return
    for r in rows:
        click.echo(line(r, now))


@tenant.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def import_(file: Path) -> None:
    """Add or update tenants from FILE (`-`: standard input), one JSON object per line.

    \b
    {"name": "acme", "domain": "acme.okta.com", "api_token": {"env": "ACME_TOKEN"},
     "interval": 86400, "incremental_interval": 60, "sync_custom_roles": true,
     "filter_email_domains": "acme.com"}

    Keys are the `tenant add` flags with underscores, plus "paused"; values are checked as the
    flags are ("incremental_interval" and "verify_interval": 0, "off" or null is off). A secret
    (api_token, okta_private_key) is the value itself or {"env": "VARIABLE"}; a file holding a
    secret itself must not be readable by other users (chmod 600). A key left out
    keeps the tenant's value, so importing `tenant export` output changes nothing. Each line says
    added, updated or unchanged; a bad line is reported by its number and the others still apply.
    Exit status: 0 if every line applied, 1 if any failed, 2 if the file was refused."""
    from worker.commands.tenant_file import BadLine, LineError, apply, parse, refuse_if_others_can_read
    from worker.store.secrets import load_keys
    from worker.store.tenants import list_tenants

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    lines = list(parse(text))
    if str(file) != "-" and any(not isinstance(x, BadLine) and x.holds_secret() for x in lines):
        refuse_if_others_can_read(file)
    try:
        keys = load_keys()  # once: every line's credentials are encrypted with it
    except _store_errors() as exc:
        raise click.ClickException(str(exc)) from None
    counts = {"added": 0, "updated": 0, "unchanged": 0, "failed": 0}
    with open_sessions(migrate_first=True)() as s, s.no_autoflush:  # one flush at the end: batched inserts
        tenants = {t.name: t for t in list_tenants(s)}
        for item in lines:
            if not isinstance(item, BadLine):
                try:  # a refused line changes nothing (apply checks everything first); the others apply
                    result = apply(s, item, tenants, keys, os.environ)
                    click.echo(f"line {item.number}: {item.name} {result}")
                    counts[result.split()[0]] += 1
                    continue
                except (LineError, click.ClickException, *_store_errors()) as exc:
                    error = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
                    item = BadLine(item.number, item.name, error)
            counts["failed"] += 1
            click.echo(f"line {item.number}: {'' if item.name is None else item.name + ' '}failed: {item.error}",
                       err=True)
        try:
            s.commit()
        except sa.exc.IntegrityError as exc:  # another process added one of these names meanwhile
            raise click.ClickException(f"nothing applied, the database refused the changes: {exc.orig}; "
                                       "import the file again") from None
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()), err=True)
    if counts["failed"]:
        sys.exit(1)


@tenant.command("export")
def export() -> None:
    """Write every tenant as a `tenant import` line, without credentials (import keeps a tenant's
    credentials when a line has none)."""
    from worker.commands.tenant_file import export_line
    from worker.store.tenants import list_tenants

    with open_sessions()() as s:
        for row in list_tenants(s):
            click.echo(export_line(row))


def _get(s: Any, name: str) -> Any:
    from worker.store.tenants import TenantNotFound, get_tenant

    try:
        return get_tenant(s, name)
    except TenantNotFound as exc:
        raise click.ClickException(str(exc)) from None


@tenant.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def show(name: str, as_json: bool) -> None:
    """Show one tenant (credentials are never shown, only their kind)."""
    with open_sessions()() as s:
        info = tenant_info(s, _get(s, name))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:20} {json.dumps(value) if isinstance(value, dict) else value}")


@tenant.command("update")
@click.argument("name")
@click.option("--domain", default=None, help="The org's new Okta domain.")
@credential_options(from_env=False)
@sync_options(from_env=False)
@schedule_options(adding=False)
@click.option("--rename", default=None, help="New name.")
def update(name: str, domain: str | None, interval: int | None, incremental_interval: int | None,
           verify_interval: int | None, rename: str | None, **flags: Any) -> None:
    """Change a tenant's domain, credentials, options or intervals.

    Only the flags given change anything: unlike `tenant add`, no OKTASYNC_* variable is read, so
    an exported token or option cannot silently replace the tenant's. To rotate a token without
    it showing in `ps`, pipe it in: `... | oktasync tenant update NAME --api-token -`.
    Domain, credentials and options apply from its next run; a new interval moves the next due
    time at once (last scheduled start + the new interval); incremental runs or drift checks turned
    on are due at once (a full sync that is due goes first)."""
    from worker.store.tenants import update_tenant

    creds = credentials_from(flags.pop("api_token"), flags.pop("okta_client_id"), flags.pop("okta_private_key"),
                             flags.pop("okta_private_key_id"), required=False)
    given = [domain, creds, interval, incremental_interval, verify_interval, rename, *flags.values()]
    if all(v is None for v in given):
        raise click.UsageError("nothing to change; give --domain, credentials, options, --interval, "
                               "--incremental-interval, --verify-interval or --rename")
    with open_sessions()() as s:
        row = _get(s, name)
        try:
            changes = tenant_changes(row, domain=domain, credentials=creds, option_flags=flags, interval=interval,
                                     incremental_interval=incremental_interval, verify_interval=verify_interval)
            if rename is not None and rename != name:
                changes["name"] = rename
            if not changes:
                click.echo(f"tenant {name} unchanged: it already has these settings")
                return
            update_tenant(s, name, **changes)
            s.commit()
        except _store_errors() as exc:
            raise click.ClickException(str(exc)) from None
        except sa.exc.IntegrityError:  # the only unique column a change can hit is the name
            raise click.ClickException(f"cannot rename {name} to {rename}: tenant {rename!r} already exists") from None
    due = changes.get("next_sync_at")
    click.echo(f"updated tenant {name}: {', '.join(sorted(k for k in changes if not k.startswith('next_')))}"
               + (f"; next sync due {_when(due)}" if due is not None else ""))


def _set_enabled(name: str, enabled: bool) -> None:
    from worker.store.tenants import update_tenant

    with open_sessions()() as s:
        _get(s, name)
        update_tenant(s, name, enabled=enabled)
        s.commit()


@tenant.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Stop scheduling syncs of a tenant (a run in progress finishes)."""
    _set_enabled(name, False)
    click.echo(f"paused tenant {name}")


@tenant.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Schedule a paused tenant again (a sync that fell due meanwhile starts at once)."""
    _set_enabled(name, True)
    click.echo(f"resumed tenant {name}")


def remove_tenant_cleanly(sessions: Any, name: str) -> tuple[int, int]:
    """Stop the tenant's active run (its page tasks then find nothing to do), then delete it all;
    returns the tenant's id and the rows deleted."""
    from worker.store import runs
    from worker.store.tenants import remove_tenant

    with sessions() as s:
        tenant_id = _get(s, name).id
        s.commit()
        runs.begin_write(s)
        run = runs.active_run(s, tenant_id)
        if run is not None:
            runs.fail(s, run.id, "tenant removed")
        s.commit()
        return tenant_id, remove_tenant(s, name)


def forget_rate_limits(tenant_id: int) -> str:
    """Drop the tenant's rate-limit keys from $OKTASYNC_REDIS_URL now rather than at their expiry;
    says what happened (a Redis that is down only delays that, so it is not an error)."""
    import redis

    from worker.config import ConfigError, load
    from worker.okta.ratelimit import RedisLimiter

    try:
        client = redis.Redis.from_url(load().redis_url, socket_timeout=5, socket_connect_timeout=5)
    except (ConfigError, ValueError) as exc:
        return f"rate-limit keys left to expire ({exc})"
    try:
        return f"{RedisLimiter(client).forget(str(tenant_id))} rate-limit keys deleted"
    except redis.RedisError as exc:
        return f"rate-limit keys left to expire ({type(exc).__name__} from Redis)"
    finally:
        client.close()


@tenant.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(name: str, yes: bool) -> None:
    """Delete a tenant and all its data (an active run is stopped first)."""
    if not yes:
        click.confirm(f"remove tenant {name} and everything synced for it?", abort=True)
    tenant_id, rows = remove_tenant_cleanly(open_sessions(), name)
    click.echo(f"removed tenant {name} ({rows} rows deleted, {forget_rate_limits(tenant_id)})")
