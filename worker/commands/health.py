"""`oktasync health`: is everything the distributed mode needs up? Exit 0 if so, 1 naming what is not.

Checks, each with a short timeout: the settings, the database (reachable, schema at the newest
revision), Redis (PING; its eviction policy), the broker (a connection), and that workers answer a
ping and consume the `sync`, `provisioning` and `dispatch` queues.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import click

QUEUES = ("sync", "provisioning", "dispatch")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warning: str | None = None


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as its scheme only
        return url.split("://", 1)[0] + "://..."


def check_database(url: str, timeout: float) -> Check:
    from worker.store.db import make_engine
    from worker.store.migrate import current_revision, head_revision

    shown = _safe_url(url)
    from worker.observability.metrics import missing_sqlite_file

    missing = missing_sqlite_file(url)
    if missing:  # connecting would create an empty file and report "schema empty"
        return Check("database", False, f"{shown}: {missing} does not exist (run `oktasync db upgrade`, or set "
                     "OKTASYNC_DATABASE_URL)")
    extra: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        extra = {"connect_args": {"connect_timeout": max(1, int(timeout))}, "pool_size": 1}
    try:
        engine = make_engine(url, **extra)
        try:
            rev = current_revision(engine)
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return Check("database", False, f"{shown}: cannot connect: {type(exc).__name__}: {_first_line(exc)}")
    head = head_revision()
    if rev != head:
        return Check("database", False, f"{shown}: schema at {rev or '(empty)'}, newest is {head}: "
                     "run `oktasync db upgrade`")
    return Check("database", True, f"{shown}: schema at {rev}")


def check_redis(url: str, timeout: float) -> Check:
    import redis

    shown = _safe_url(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return Check("redis", False, f"{shown}: {type(exc).__name__}: {_first_line(exc)}")
    warning = None
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
        if policy and policy != "noeviction":
            warning = (f"maxmemory-policy is {policy}: Redis may evict queued tasks or limiter keys; "
                       "use noeviction (deploy/redis.conf)")
    except Exception:  # noqa: BLE001 - CONFIG may be disabled on managed Redis: nothing to say then
        pass
    finally:
        client.close()
    return Check("redis", True, f"{shown}: PONG", warning)


def check_broker(app: Any, timeout: float) -> Check:
    shown = _safe_url(app.conf.broker_url or "")
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return Check("broker", False, f"{shown}: {type(exc).__name__}: {_first_line(exc)}")
    return Check("broker", True, f"{shown}: connected")


def check_workers(app: Any, timeout: float, queues: tuple[str, ...]) -> Check:
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # noqa: BLE001
        return Check("workers", False, f"cannot ask workers: {type(exc).__name__}: {_first_line(exc)}")
    if not replies:
        return Check("workers", False, f"no worker answered within {timeout:g}s (start `celery -A worker worker "
                     "-Q sync`, `-Q provisioning` and `-Q dispatch`; see Procfile)")
    consumed: dict[str, list[str]] = {q: [] for q in queues}
    for worker, active in replies.items():
        for q in active or []:
            if q.get("name") in consumed:
                consumed[q["name"]].append(worker)
    missing = [q for q, workers in consumed.items() if not workers]
    listing = "; ".join(f"{q}: {', '.join(sorted(w))}" for q, w in consumed.items() if w)
    if missing:
        return Check("workers", False, f"no worker consumes {', '.join(missing)} ({len(replies)} answered"
                     + (f"; {listing}" if listing else "") + ")")
    return Check("workers", True, f"{len(replies)} answered; {listing}")


def _first_line(exc: BaseException) -> str:
    from worker.observability.redact import redact

    text = str(exc).strip().splitlines()
    return redact(text[0] if text else "")[:300]


def run_checks(timeout: float, queues: tuple[str, ...], workers: bool) -> list[Check]:
    from worker.config import ConfigError, load
    from worker.store.db import database_url

    try:
        settings = load()
    except ConfigError as exc:
        return [Check("settings", False, str(exc))]
    checks: list[Check] = [Check("settings", True, "OKTASYNC_* settings are valid")]
    runs: list[tuple[str, Callable[[], Check]]] = [
        ("database", lambda: check_database(database_url(), timeout)),
        ("redis", lambda: check_redis(settings.redis_url, timeout)),
    ]
    for _, fn in runs:
        checks.append(fn())
    from worker.app import make_app

    app = make_app(settings)
    broker = check_broker(app, timeout)
    checks.append(broker)
    if workers:
        checks.append(check_workers(app, timeout, queues) if broker.ok
                      else Check("workers", False, "not asked: the broker is down"))
    return checks


@click.command("health")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=2.0, show_default=True,
              help="Seconds to wait for each service and for workers to answer.")
@click.option("--queue", "queues", multiple=True, default=QUEUES, show_default=True,
              help="Queues that must have a worker (repeat the option).")
@click.option("--no-workers", is_flag=True, help="Check the services only, not the workers.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def health(timeout: float, queues: tuple[str, ...], no_workers: bool, as_json: bool) -> None:
    """Check the database, Redis, the broker and the workers; exit 1 naming what is wrong.

    Reads OKTASYNC_DATABASE_URL, OKTASYNC_BROKER_URL and OKTASYNC_REDIS_URL.
    """
    started = time.monotonic()
    checks = run_checks(timeout, tuple(queues), not no_workers)
    ok = all(c.ok for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "seconds": round(time.monotonic() - started, 3),
                               "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name:9} {c.detail}")
            if c.warning:
                click.echo(f"warn {c.name:9} {c.warning}")
        if not ok:
            click.echo("unhealthy: " + ", ".join(c.name for c in checks if not c.ok), err=True)
    sys.exit(0 if ok else 1)
