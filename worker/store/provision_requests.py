"""Request rows (`provisioning_requests`): record once per (tenant, idempotency key), claim, finish.

State machine: queued -> running -> succeeded | failed | dead; running -> queued while a retry
waits. Every transition is a conditional UPDATE (WHERE state = what we read, attempts = ours), so
two deliveries of one request can never both finish it, and a finished request is never reopened.
A `running` row not renewed (updated_at) for longer than the lease (the caller's: a worker passes
Settings.lease_seconds) belongs to a worker that died: the redelivered message may take it over. Requests on the same subject (one grant, one user, one
group) run in the order they were recorded: a later one waits while an earlier one is unfinished.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.provisioning import intake
from worker.provisioning.errors import IdempotencyConflict, InvalidRequest
from worker.store.tables import ProvisioningRequest, Tenant

TERMINAL = ("succeeded", "failed", "dead")
# Longer than any single attempt (a few Okta calls under the client's timeouts); checkpoints renew it.
# Workers pass their own (Settings.lease_seconds: the task's hard time limit + 5 s).
DEFAULT_LEASE = 60.0


class UnknownTenant(InvalidRequest):
    pass


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RequestRef:
    """What callers get back: enough to find the request again and see where it stands."""

    id: int
    tenant: str
    idempotency_key: str
    kind: str
    state: str
    created: bool  # False: an earlier request with this key was returned
    error: str | None = None
    result: dict[str, Any] | None = None
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tenant": self.tenant, "idempotency_key": self.idempotency_key,
                "kind": self.kind, "state": self.state, "attempts": self.attempts,
                "error": self.error, "result": self.result, "created": self.created}


def ref(row: ProvisioningRequest, tenant: str, created: bool = False) -> RequestRef:
    result = dict(row.result) if row.result else None
    return RequestRef(row.id, tenant, row.idempotency_key, row.kind, row.state, created, row.error,
                      result, row.attempts)


def tenant_by_name(session: Session, name: Any) -> Tenant:
    if not isinstance(name, str) or not name.strip():
        raise UnknownTenant(f"tenant must be a non-empty name, got {name!r}")
    tenant = session.scalar(sa.select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise UnknownTenant(f"unknown tenant {name!r}")
    return tenant


def _insert_ignore(session: Session, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call inserted the row."""
    table = ProvisioningRequest.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    inserted = session.execute(insert(table).values(**values).on_conflict_do_nothing(
        index_elements=["tenant_id", "idempotency_key"]).returning(table.c.id)).first()
    return inserted is not None


def record(session: Session, tenant: str, kind: Any, payload: Any,
           idempotency_key: str | None = None) -> RequestRef:
    """Validate and record a request (committing). An invalid request is recorded as failed with
    the reason; the same key again returns the existing row; a different payload under a used key
    raises IdempotencyConflict. An unknown tenant raises UnknownTenant (there is no row to own it)."""
    trow = tenant_by_name(session, tenant)
    key = idempotency_key if idempotency_key is not None else f"auto-{uuid.uuid4().hex}"
    if not isinstance(key, str) or not key.strip() or len(key) > 255:
        raise InvalidRequest(f"idempotency key must be a non-empty string of at most 255 characters, got {key!r}")
    try:
        normalized = intake.normalize(kind, payload)
        state, error = "queued", None
    except InvalidRequest as exc:
        normalized = payload if isinstance(payload, dict) else {"raw": payload}
        state, error = "failed", f"invalid request: {exc}"
    kind_text = kind if isinstance(kind, str) else repr(kind)
    digest = intake.payload_hash(kind_text, normalized)
    ts = now()
    created = _insert_ignore(session, dict(
        tenant_id=trow.id, idempotency_key=key, kind=kind_text[:32], payload=normalized,
        payload_hash=digest, state=state, attempts=0, error=error, created_at=ts, updated_at=ts,
        finished_at=ts if state == "failed" else None))
    row = session.scalar(sa.select(ProvisioningRequest).where(
        ProvisioningRequest.tenant_id == trow.id, ProvisioningRequest.idempotency_key == key))
    session.commit()
    assert row is not None
    if row.payload_hash != digest:
        raise IdempotencyConflict(
            f"idempotency key {key!r} of tenant {tenant!r} is already used by request {row.id} "
            f"({row.kind}, {row.state}) with a different payload; use a new key for a new request")
    return ref(row, trow.name, created=created)


def get(session: Session, request_id: int) -> ProvisioningRequest | None:
    return session.get(ProvisioningRequest, request_id, populate_existing=True)


def by_key(session: Session, tenant: str, key: str) -> RequestRef | None:
    trow = tenant_by_name(session, tenant)
    row = session.scalar(sa.select(ProvisioningRequest).where(
        ProvisioningRequest.tenant_id == trow.id, ProvisioningRequest.idempotency_key == key))
    return ref(row, trow.name) if row else None


def listing(session: Session, tenant: str, state: str | None = None, limit: int = 100) -> list[RequestRef]:
    trow = tenant_by_name(session, tenant)
    q = sa.select(ProvisioningRequest).where(ProvisioningRequest.tenant_id == trow.id)
    if state:
        q = q.where(ProvisioningRequest.state == state)
    rows = session.scalars(q.order_by(ProvisioningRequest.id.desc()).limit(limit)).all()
    return [ref(r, trow.name) for r in rows]


def claim(session: Session, request_id: int, lease: float = DEFAULT_LEASE) -> tuple[ProvisioningRequest | None, float]:
    """Move a queued (or lease-expired running) request to running, counting the attempt.

    Returns (row, 0) when claimed, (None, 0) when there is nothing to do (terminal or missing),
    (None, seconds) when another worker holds a live lease: come back after that many seconds.
    """
    row = get(session, request_id)
    if row is None or row.state in TERMINAL:
        session.rollback()
        return None, 0.0
    ts = now()
    blocker = earlier_on_same_subject(session, row)
    if blocker is not None:  # keep per-subject order: a grant then a revoke must not swap
        session.rollback()
        return None, 1.0
    if row.state == "running":
        age = (ts - row.updated_at).total_seconds()
        if age < lease:
            session.rollback()
            return None, max(1.0, lease - age)
    res = session.execute(
        sa.update(ProvisioningRequest)
        .where(ProvisioningRequest.id == request_id, ProvisioningRequest.state == row.state,
               ProvisioningRequest.attempts == row.attempts)
        .values(state="running", attempts=row.attempts + 1, updated_at=ts,
                started_at=row.started_at or ts))
    session.commit()
    if res.rowcount != 1:
        return None, 1.0  # someone else moved it meanwhile: look again shortly
    return get(session, request_id), 0.0


def _subject(kind: str, payload: dict[str, Any]) -> Any:
    """SQL condition matching requests on the same subject (None: nothing to order against)."""
    P = ProvisioningRequest.payload
    kind_col = ProvisioningRequest.kind
    if kind in ("grant", "revoke"):
        return sa.and_(kind_col.in_(("grant", "revoke")),
                       P["entitlement"].as_string() == payload.get("entitlement"),
                       P["principal"].as_string() == payload.get("principal"))
    if kind == "action":
        args = payload.get("args") or {}
        oid = args.get("user_id") or args.get("group_id")
    elif kind == "delete":
        oid = payload.get("resource_id")
    else:
        return None
    if not isinstance(oid, str):
        return None
    return sa.or_(
        sa.and_(kind_col == "action", sa.or_(P[("args", "user_id")].as_string() == oid,
                                             P[("args", "group_id")].as_string() == oid)),
        sa.and_(kind_col == "delete", P["resource_id"].as_string() == oid))


def earlier_on_same_subject(session: Session, row: ProvisioningRequest) -> int | None:
    """The id of an earlier unfinished request of the tenant on the same grant, user or group."""
    cond = _subject(row.kind, dict(row.payload or {}))
    if cond is None:
        return None
    return session.scalar(sa.select(ProvisioningRequest.id).where(
        ProvisioningRequest.tenant_id == row.tenant_id, ProvisioningRequest.id < row.id,
        ProvisioningRequest.state.in_(("queued", "running")), cond).order_by(ProvisioningRequest.id).limit(1))


def _owned(request_id: int, attempts: int) -> Any:
    return sa.and_(ProvisioningRequest.id == request_id, ProvisioningRequest.state == "running",
                   ProvisioningRequest.attempts == attempts)


def checkpoint(session: Session, request_id: int, attempts: int, progress: dict[str, Any]) -> None:
    """Record progress (e.g. a created group's id) and renew the lease, committing at once."""
    res = session.execute(sa.update(ProvisioningRequest).where(_owned(request_id, attempts))
                          .values(result={"progress": progress}, updated_at=now()))
    session.commit()
    if res.rowcount != 1:
        raise LostLease(f"request {request_id} was taken over by another worker")


class LostLease(RuntimeError):
    pass


def finish(session: Session, request_id: int, attempts: int, state: str, *, result: dict[str, Any] | None,
           error: str | None) -> bool:
    """Set a terminal state; False when this attempt no longer owns the row. Does not commit."""
    assert state in TERMINAL
    ts = now()
    res = session.execute(sa.update(ProvisioningRequest).where(_owned(request_id, attempts))
                          .values(state=state, result=result, error=error, updated_at=ts, finished_at=ts))
    return res.rowcount == 1


def requeue(session: Session, request_id: int, attempts: int, error: str, progress: dict[str, Any], *,
            count: bool = True) -> bool:
    """Back to queued while a retry waits, keeping the last error and the progress. count=False
    (a rate-limit deferral) takes the attempt back, so `attempts` counts real tries."""
    res = session.execute(sa.update(ProvisioningRequest).where(_owned(request_id, attempts))
                          .values(state="queued", error=error, result={"progress": progress} if progress else None,
                                  attempts=attempts if count else attempts - 1, updated_at=now()))
    session.commit()
    return res.rowcount == 1


def stale(session: Session, older_than: float, lease: float = DEFAULT_LEASE) -> list[int]:
    """Queued requests untouched for `older_than` seconds (their message may be lost) and running
    ones past their lease: the reaper publishes them again (execution is idempotent)."""
    cut = now() - timedelta(seconds=older_than)
    lease_cut = now() - timedelta(seconds=max(older_than, lease))
    q = sa.select(ProvisioningRequest.id).where(sa.or_(
        sa.and_(ProvisioningRequest.state == "queued", ProvisioningRequest.updated_at < cut),
        sa.and_(ProvisioningRequest.state == "running", ProvisioningRequest.updated_at < lease_cut)))
    ids = list(session.scalars(q.order_by(ProvisioningRequest.id).limit(1000)))
    session.rollback()
    return ids
