"""Intake shared by every entry point: record the request row, then publish it to the queue.

The row is committed before the message is published (a worker must find the row), and a
request still `queued` is published again when its key is submitted again or by the reaper
(`oktasync.provision.reap`) after a while, so a publish lost to a crash is not a lost request;
execution is idempotent, so publishing twice is harmless.

Submissions that cannot own a row (unknown tenant, an idempotency key reused with a different
payload, arriving as a JSON message with nobody to tell) go to the Redis list REJECTED_KEY,
newest first, capped at REJECTED_MAX entries: `oktasync provision rejected` shows them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from worker.store import provision_requests as requests
from worker.store.provision_requests import RequestRef

log = logging.getLogger("oktasync.provisioning")

EXECUTE_TASK = "oktasync.provision.execute"
SUBMIT_TASK = "oktasync.provision.submit"
REAP_TASK = "oktasync.provision.reap"
QUEUE = "provisioning"
REJECTED_KEY = "oktasync:provision:rejected"
REJECTED_MAX = 10_000
REPUBLISH_AFTER = 30.0  # seconds a queued request may sit before a resubmission publishes it again


def publish(app: Any, request_id: int, countdown: float | None = None) -> None:
    app.send_task(EXECUTE_TASK, args=[request_id], queue=QUEUE, countdown=countdown)


def record_and_publish(session: Session, app: Any, tenant: str, kind: Any, payload: Any,
                       idempotency_key: str | None = None) -> RequestRef:
    ref = requests.record(session, tenant, kind, payload, idempotency_key)
    if ref.state == "queued" and (ref.created or _stale(session, ref.id)):
        publish(app, ref.id)
    return ref


def _stale(session: Session, request_id: int) -> bool:
    row = requests.get(session, request_id)
    session.rollback()
    return bool(row and row.state == "queued"
                and (datetime.now(UTC) - row.updated_at).total_seconds() > REPUBLISH_AFTER)


def reject(redis_client: Any, tenant: Any, kind: Any, payload: Any, key: Any, reason: str) -> None:
    """Keep a submission that has no row to live in, where operators can see it."""
    log.error("provisioning submission rejected: %s (tenant=%r key=%r kind=%r)", reason, tenant, key, kind)
    _keep(redis_client, {"tenant": tenant, "kind": kind, "idempotency_key": key, "payload": payload,
                         "error": reason})


def reject_message(redis_client: Any, reason: str, raw: str, size: int) -> None:
    """Keep a message on the queue that is not a provisioning task at all (broker_guard's sink):
    its first characters, its size and why it could not run."""
    _keep(redis_client, {"error": f"malformed message on the {QUEUE} queue: {reason}", "message": raw,
                         "message_chars": size, "message_truncated": size > len(raw)})


def _keep(redis_client: Any, entry: dict[str, Any]) -> None:
    if redis_client is None:
        return
    entry = {"received_at": datetime.now(UTC).isoformat(), **entry}
    pipe = redis_client.pipeline()
    pipe.lpush(REJECTED_KEY, json.dumps(entry, default=str))
    pipe.ltrim(REJECTED_KEY, 0, REJECTED_MAX - 1)
    pipe.execute()


def rejected(redis_client: Any, limit: int = 100) -> list[dict[str, Any]]:
    return [json.loads(x) for x in redis_client.lrange(REJECTED_KEY, 0, max(0, limit - 1))]
