"""The one base of every oktasync Celery task, and the worker process's runtime.

- `ProcessRuntime`: what tasks need from their process (settings, Redis, database sessions, the
  engine's Runtime, provisioning's Okta client factory), built once per process: when a prefork
  child starts (`worker_process_init`), or on first use in a process that forked no children
  (solo pool, Beat). A forked child never reuses its parent's connections.
- `OktasyncTask`: counts each redelivery of a message (Redis INCR with a TTL; a first delivery,
  which kombu does not mark `redelivered`, costs nothing) and gives it up past `max_redeliveries`
  (with `acks_late` + `task_reject_on_worker_lost`, a message whose execution kills the worker
  comes back forever otherwise); retries a task in a new message when the database connection was
  lost (every step is safe to run twice). Tasks set `max_retries`.
- Metrics come from hooks given to what the runtime builds: the engine's event sink counts
  deferrals, and an httpx response hook on every Okta client counts 429s.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Task, signals
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from worker.config import Settings
from worker.engine.runtime import Runtime, log_events
from worker.engine.sender import CelerySender
from worker.observability.counters import DeferralCounter, Okta429Counter

log = logging.getLogger("oktasync.task")

# Longest wait before retrying a task whose database connection was lost.
DB_RETRY_MAX_COUNTDOWN = 60.0


@dataclass
class ProcessRuntime:
    settings: Settings
    redis: Any
    sessions: sessionmaker[Session]
    engine: Runtime
    # Builds a provisioning Okta client for a Tenant row (worker/provisioning/runner.py).
    provision_client: Callable[[Any], Any]
    provision_policy: Any  # worker.provisioning.runner.RetryPolicy


def _build(app: Any) -> ProcessRuntime:
    import redis

    from worker.connector.tenant_client import redis_limiter, tenant_factory
    from worker.provisioning import runner
    from worker.store.db import make_engine, make_session_factory

    settings: Settings = app.conf.oktasync_settings
    rclient = redis.Redis.from_url(settings.redis_url)
    limiter = redis_limiter(rclient, settings.rate_limit_share, settings.max_in_flight)
    pool_size = settings.pool_size_for(_worker_pool.get("kind", "prefork"), _worker_pool.get("concurrency", 1))
    sessions = make_session_factory(make_engine(settings.database_url, pool_size=pool_size))
    on_429 = Okta429Counter(settings.redis_url)
    deferrals = DeferralCounter(settings.redis_url)

    def events(kind: str, data: dict[str, Any]) -> None:
        log_events(kind, data)
        deferrals(kind, data)

    engine = Runtime(
        sessions=sessions,
        sender=CelerySender(app),
        make_tenant=tenant_factory(limiter, response_hooks=[on_429]),
        tenant_max_streams=settings.tenant_max_streams,
        global_max_streams=settings.global_max_streams,
        max_active_runs=settings.run_bound,
        countdown_cap=settings.countdown_cap,
        stall_timeout=settings.stall_timeout,
        run_stall_factor=settings.run_stall_factor,
        max_redeliveries=settings.max_redeliveries,
        events=events,
    )
    okta_client = runner.default_client_factory(limiter, inline_wait=settings.provision_wait)

    def provision_client(tenant: Any) -> Any:
        client = okta_client(tenant)
        client.response_hooks = (*client.response_hooks, on_429)
        return client

    policy = runner.RetryPolicy(settings.provision_max_retries, settings.provision_retry_base,
                                settings.provision_retry_cap)
    return ProcessRuntime(settings, rclient, sessions, engine, provision_client, policy)


_lock = threading.Lock()
_built: dict[str, Any] = {}


def process_runtime(app: Any) -> ProcessRuntime:
    """This process's runtime (a new one in each forked child)."""
    pid = os.getpid()
    with _lock:
        if _built.get("pid") != pid:
            _built.update(pid=pid, runtime=_build(app))
        return _built["runtime"]


def _on_process_init(**_: Any) -> None:
    from worker.app import app

    process_runtime(app)
    # What a pool child inherited and built to this point lives as long as the child: out of the
    # cyclic collector's sight, a full collection no longer walks (and, after the fork, copies) its
    # ~150,000 objects (90 ms of CPU once measured; the gc docs advise this for forking servers).
    gc.freeze()


signals.worker_process_init.connect(_on_process_init, weak=False, dispatch_uid="oktasync-process-runtime")

# The worker's pool kind and concurrency, recorded in the main process before prefork children
# fork (they inherit it): how many tasks one process runs at once sizes its database pool.
_worker_pool: dict[str, Any] = {}


# Imported lazily by the runtime and the first task (the database driver, httpx's transport), so
# `import worker.app` stays light for the CLI; a worker imports them before its pool forks, once,
# instead of in every child's first task (~0.1 s of CPU a child, shared pages after the fork).
PRELOAD = ("psycopg", "httpcore", "redis", "worker.store.db", "worker.connector.tenant_client",
           "worker.provisioning.runner")


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    import importlib

    pool = getattr(sender, "pool_cls", "prefork")
    concurrency = getattr(sender, "concurrency", 1)
    _worker_pool.update(kind=str(pool),  # "prefork", or a class: <class 'celery.concurrency.thread...'>
                        concurrency=concurrency if isinstance(concurrency, int) else 1)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # e.g. no PostgreSQL driver on a SQLite-only install
            log.debug("preload of %s skipped", name, exc_info=True)
    gc.freeze()  # before the fork: the children's collections skip (and do not copy) these objects


signals.worker_init.connect(_on_worker_init, weak=False, dispatch_uid="oktasync-worker-pool")


def _lost_database(exc: DBAPIError) -> bool:
    """PostgreSQL restarted, connections terminated, SQLite busy: worth trying again soon."""
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


class OktasyncTask(Task):
    """Base of every oktasync task: redelivery guard and the retry policy for a lost database."""

    abstract = True
    acks_late = True

    @property
    def runtime(self) -> ProcessRuntime:
        return process_runtime(self.app)

    def give_up(self, args: tuple[Any, ...], kwargs: dict[str, Any], deliveries: int) -> Any:
        """Called instead of the task when its message was delivered too often; its return value
        is the task's. Tasks whose work has a row to fail override this."""
        return None

    def deliveries(self) -> int:
        """Which delivery of this message this is (a retry is a new message with the same id); 1
        on the first delivery. Only a redelivered message is counted in Redis: kombu's Redis
        transport marks every message it puts back (worker lost, visibility timeout, rejected)
        `redelivered`, so a first delivery costs no round trip. The unmarked first delivery is
        added to the count, which may count one more than ran if a message came back before it
        ever started (e.g. prefetched by a worker that stopped): the guard errs by one early."""
        key = self._delivery_key()
        if key is None:
            return 1
        rt = self.runtime
        pipe = rt.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, int(rt.settings.visibility_timeout * (rt.settings.max_redeliveries + 2)))
        return 1 + int(pipe.execute()[0])

    def _delivery_key(self) -> str | None:
        """The message's counter key, or None on a first delivery (nothing to count or drop)."""
        task_id = self.request.id
        if not task_id or not (self.request.delivery_info or {}).get("redelivered"):
            return None
        return f"oktasync:deliveries:{task_id}:{self.request.retries or 0}"

    def forget_deliveries(self) -> None:
        """The task returned or raised, so its message is acknowledged (a retry is a new message
        with its own key) and will not come back: drop its counter now rather than leave a key
        per message in Redis for the counter's TTL. Only a lost worker leaves the key behind,
        which is what the counter is for."""
        key = self._delivery_key()
        if key is not None:
            try:
                self.runtime.redis.delete(key)
            except Exception:  # noqa: BLE001 - the TTL still removes it
                log.debug("could not delete %s", key, exc_info=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._deliver(*args, **kwargs)
        finally:
            self.forget_deliveries()

    def _deliver(self, *args: Any, **kwargs: Any) -> Any:
        count = self.deliveries()
        if count > self.runtime.settings.max_redeliveries:
            log.error("task %s %s delivered %s times; giving up", self.name, list(args), count)
            return self.give_up(args, kwargs, count)
        try:
            return super().__call__(*args, **kwargs)
        except DBAPIError as exc:
            retries = self.request.retries or 0
            if not _lost_database(exc) or (self.max_retries is not None and retries >= self.max_retries):
                raise
            countdown = min(DB_RETRY_MAX_COUNTDOWN, 2.0 ** retries) * random.uniform(0.5, 1.0)
            log.warning("task %s %s: database unavailable (%s); retrying in %.1fs",
                        self.name, list(args), type(exc.orig or exc).__name__, countdown)
            raise self.retry(countdown=countdown) from None
