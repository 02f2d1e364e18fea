"""Celery tasks of the provisioning queue (`celery -A worker worker -Q provisioning`).

- `oktasync.provision.submit(tenant, kind, payload, idempotency_key=None)`: the JSON entry point
  for any Celery client: validate, record the request row (invalid -> a failed row with the
  reason), publish `execute`. See docs/provisioning.md for the message.
- `oktasync.provision.execute(request_id)`: one attempt (worker/provisioning/runner.py); a
  transient failure or a rate-limit wait re-enqueues it with a countdown, never a sleep.
- `oktasync.provision.reap()`: publish again requests whose message was lost (beat, every minute).

Arguments are names, ids and payloads only; credentials are read from the store in the task.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy.exc import OperationalError

from worker import broker_guard
from worker.app import app
from worker.provisioning import requests, runner, service
from worker.provisioning.clients import INLINE_WAIT
from worker.provisioning.errors import IdempotencyConflict, InvalidRequest

log = logging.getLogger("oktasync.provisioning")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _runtime() -> dict[str, Any]:
    """Per process (after the prefork fork): sessions, Redis, the Okta client factory."""
    pid = os.getpid()
    with _lock:
        if _state.get("pid") != pid:
            import redis

            from worker.store.db import make_engine, make_session_factory

            settings = app.conf.oktasync_settings
            if not os.environ.get("OKTASYNC_PROVISION_LEASE"):
                # No attempt outlives the hard time limit: past it, a `running` row's worker is gone.
                requests.LEASE_SECONDS = settings.task_time_limit + 5
            rclient = redis.Redis.from_url(settings.redis_url)
            limiter = None
            try:
                from worker.tasks.runtime import make_limiter

                limiter = make_limiter(settings, rclient)
            except Exception as exc:  # noqa: BLE001 - say it, then run unpaced rather than not at all
                log.warning("provisioning without the shared rate limiter: %s", exc)
            _state.clear()
            _state.update(pid=pid, settings=settings, redis=rclient,
                          sessions=make_session_factory(make_engine(settings.database_url)),
                          client_for=runner.default_client_factory(
                              limiter, inline_wait=min(INLINE_WAIT, settings.task_soft_time_limit / 3)))
        return _state


def _keep_malformed(reason: str, raw: str, size: int) -> None:
    service.reject_message(_runtime()["redis"], reason, raw, size)


# Upstream systems write to this queue: what is not one of its tasks goes to the rejected list.
broker_guard.watch(service.QUEUE, {service.SUBMIT_TASK, service.EXECUTE_TASK, service.REAP_TASK}, _keep_malformed)


def _deliveries(task_id: str | None, retries: int) -> int:
    """Deliveries of this very message (a retry is a new message with the same id)."""
    if not task_id:
        return 1
    st = _runtime()
    key = f"oktasync:provision:deliveries:{task_id}:{retries}"
    pipe = st["redis"].pipeline()
    pipe.incr(key)
    pipe.expire(key, int(st["settings"].visibility_timeout * (st["settings"].max_redeliveries + 2)))
    return int(pipe.execute()[0])


# The store unreachable for a moment must not lose a message: retry it (the work is idempotent).
_DB_RETRY = dict(autoretry_for=(OperationalError,), retry_backoff=2, retry_backoff_max=60, retry_jitter=True)


@app.task(name=service.SUBMIT_TASK, bind=True, acks_late=True, max_retries=30, **_DB_RETRY)
def submit(self: Any, tenant: Any = None, kind: Any = None, payload: Any = None,
           idempotency_key: Any = None) -> dict[str, Any] | None:
    st = _runtime()
    with st["sessions"]() as session:
        try:
            ref = service.record_and_publish(session, app, tenant, kind, payload, idempotency_key)
        except (InvalidRequest, IdempotencyConflict) as exc:  # no row can hold it: keep it visible
            session.rollback()
            service.reject(st["redis"], tenant, kind, payload, idempotency_key, str(exc))
            return None
    log.info("provisioning request %s recorded (%s, %s, key %s)", ref.id, ref.kind, ref.state, ref.idempotency_key)
    return ref.as_dict()


@app.task(name=service.EXECUTE_TASK, bind=True, acks_late=True, max_retries=None, **_DB_RETRY)
def execute(self: Any, request_id: int) -> str | None:
    st = _runtime()
    count = _deliveries(self.request.id, self.request.retries or 0)
    if count > st["settings"].max_redeliveries:
        _give_up(st, request_id, count)
        return "dead"
    step = runner.run_request(st["sessions"], int(request_id), st["client_for"])
    if not step.done:
        raise self.retry(countdown=min(step.countdown, st["settings"].countdown_cap), max_retries=None)
    return step.state


def _give_up(st: dict[str, Any], request_id: int, count: int) -> None:
    """The worker died `count` times running this message: do not loop on a poison request."""
    import sqlalchemy as sa

    from worker.store.models import ProvisioningRequest

    with st["sessions"]() as session:
        session.execute(sa.update(ProvisioningRequest).where(
            ProvisioningRequest.id == request_id, ProvisioningRequest.state.in_(("queued", "running")))
            .values(state="dead", error=f"the worker running this request died {count - 1} times; given up",
                    updated_at=requests.now(), finished_at=requests.now()))
        session.commit()


@app.task(name=service.REAP_TASK, acks_late=True)
def reap(older_than: float = 120.0) -> int:
    st = _runtime()
    with st["sessions"]() as session:
        ids = requests.stale(session, older_than)
    for rid in ids:
        service.publish(app, rid)
    if ids:
        log.warning("provisioning: published %s stale request(s) again: %s", len(ids), ids[:20])
    return len(ids)
