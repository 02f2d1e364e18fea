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
from typing import Any

import sqlalchemy as sa

from worker import broker_guard
from worker.app import app
from worker.provisioning import runner, service
from worker.provisioning.errors import IdempotencyConflict, InvalidRequest
from worker.store import provision_requests
from worker.store.tables import ProvisioningRequest
from worker.tasks.base import OktasyncTask, process_runtime

log = logging.getLogger("oktasync.provisioning")


def _keep_malformed(reason: str, raw: str, size: int) -> None:
    service.reject_message(process_runtime(app).redis, reason, raw, size)


# Upstream systems write to this queue: what is not one of its tasks goes to the rejected list.
broker_guard.watch(service.QUEUE, {service.SUBMIT_TASK, service.EXECUTE_TASK, service.REAP_TASK}, _keep_malformed)


@app.task(name=service.SUBMIT_TASK, base=OktasyncTask, bind=True, max_retries=30)
def submit(self: OktasyncTask, tenant: Any = None, kind: Any = None, payload: Any = None,
           idempotency_key: Any = None) -> dict[str, Any] | None:
    rt = self.runtime
    with rt.sessions() as session:
        try:
            ref = service.record_and_publish(session, app, tenant, kind, payload, idempotency_key)
        except (InvalidRequest, IdempotencyConflict) as exc:  # no row can hold it: keep it visible
            session.rollback()
            service.reject(rt.redis, tenant, kind, payload, idempotency_key, str(exc))
            return None
    log.info("provisioning request %s recorded (%s, %s, key %s)", ref.id, ref.kind, ref.state, ref.idempotency_key)
    return ref.as_dict()


class ExecuteTask(OktasyncTask):
    abstract = True

    def give_up(self, args: tuple[Any, ...], kwargs: dict[str, Any], deliveries: int) -> str:
        """The worker died running this message each time: do not loop on a poison request."""
        request_id = int(args[0] if args else kwargs["request_id"])
        with self.runtime.sessions() as session:
            session.execute(sa.update(ProvisioningRequest).where(
                ProvisioningRequest.id == request_id, ProvisioningRequest.state.in_(("queued", "running")))
                .values(state="dead", error=f"the worker running this request died {deliveries - 1} times; given up",
                        updated_at=provision_requests.now(), finished_at=provision_requests.now()))
            session.commit()
        return "dead"


@app.task(name=service.EXECUTE_TASK, base=ExecuteTask, bind=True, max_retries=None)
def execute(self: ExecuteTask, request_id: int) -> str | None:
    rt = self.runtime
    step = runner.run_request(rt.sessions, int(request_id), rt.provision_client, rt.provision_policy,
                              rt.settings.lease_seconds)
    if not step.done:
        raise self.retry(countdown=min(step.countdown, rt.settings.countdown_cap), max_retries=None)
    return step.state


@app.task(name=service.REAP_TASK, base=OktasyncTask, bind=True, max_retries=0)
def reap(self: OktasyncTask, older_than: float = 120.0) -> int:
    with self.runtime.sessions() as session:
        ids = provision_requests.stale(session, older_than, self.runtime.settings.lease_seconds)
    for rid in ids:
        service.publish(app, rid)
    if ids:
        log.warning("provisioning: published %s stale request(s) again: %s", len(ids), ids[:20])
    return len(ids)
