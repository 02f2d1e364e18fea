"""The Python API for upstream services: submit provisioning requests and follow them.

    from worker import client
    ref = client.submit("acme", "grant", {"entitlement": "group:00g1:member", "principal": "user:00u1"},
                        idempotency_key="ticket-4711")
    ref = client.wait("acme", "ticket-4711", timeout=60)
    ref.state, ref.error, ref.result

The request row is written here (same validation as every other entry point) and the request is
published to the `provisioning` queue. An invalid request comes back as a `failed` RequestRef
with the reason; an unknown tenant raises UnknownTenant; an idempotency key already used with a
different payload raises IdempotencyConflict. Configuration: OKTASYNC_DATABASE_URL and
OKTASYNC_BROKER_URL, or pass `database_url=` / `app=`.
"""

from __future__ import annotations

import time
from typing import Any

from worker.provisioning import service
from worker.provisioning.errors import IdempotencyConflict, InvalidRequest
from worker.store import provision_requests
from worker.store.provision_requests import RequestRef, UnknownTenant

__all__ = ["submit", "status", "wait", "list_requests", "grant", "revoke", "action", "delete",
           "RequestRef", "UnknownTenant", "IdempotencyConflict", "InvalidRequest"]


def _sessions(database_url: str | None) -> Any:
    from worker.store.db import get_engine, make_session_factory

    return make_session_factory(get_engine(database_url))


def _app(app: Any) -> Any:
    if app is not None:
        return app
    from worker.app import app as default

    return default


def submit(tenant: str, kind: str, payload: dict[str, Any], idempotency_key: str | None = None, *,
           database_url: str | None = None, app: Any = None) -> RequestRef:
    """Record a request (kind: grant | revoke | action | delete) and queue it; returns at once."""
    with _sessions(database_url)() as session:
        return service.record_and_publish(session, _app(app), tenant, kind, payload, idempotency_key)


def status(tenant: str, idempotency_key: str, *, database_url: str | None = None) -> RequestRef | None:
    """Where the request stands, or None if the tenant has no request with this key."""
    with _sessions(database_url)() as session:
        return provision_requests.by_key(session, tenant, idempotency_key)


def list_requests(tenant: str, state: str | None = None, limit: int = 100, *,
                  database_url: str | None = None) -> list[RequestRef]:
    with _sessions(database_url)() as session:
        return provision_requests.listing(session, tenant, state, limit)


def wait(tenant: str, idempotency_key: str, timeout: float = 60.0, poll: float = 0.2, *,
         database_url: str | None = None) -> RequestRef:
    """Poll until the request is succeeded, failed or dead; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ref = status(tenant, idempotency_key, database_url=database_url)
        if ref is None:
            raise LookupError(f"tenant {tenant!r} has no request with idempotency key {idempotency_key!r}")
        if ref.done:
            return ref
        if time.monotonic() >= deadline:
            raise TimeoutError(f"request {ref.id} ({idempotency_key!r}) still {ref.state} after {timeout:g}s"
                               + (f"; last error: {ref.error}" if ref.error else ""))
        time.sleep(poll)


def grant(tenant: str, entitlement: str, principal: str, idempotency_key: str | None = None,
          **kw: Any) -> RequestRef:
    return submit(tenant, "grant", {"entitlement": entitlement, "principal": principal}, idempotency_key, **kw)


def revoke(tenant: str, entitlement: str, principal: str, idempotency_key: str | None = None,
           **kw: Any) -> RequestRef:
    return submit(tenant, "revoke", {"entitlement": entitlement, "principal": principal}, idempotency_key, **kw)


def action(tenant: str, name: str, args: dict[str, Any], idempotency_key: str | None = None,
           **kw: Any) -> RequestRef:
    return submit(tenant, "action", {"action": name, "args": args}, idempotency_key, **kw)


def delete(tenant: str, resource_type: str, resource_id: str, idempotency_key: str | None = None,
           **kw: Any) -> RequestRef:
    return submit(tenant, "delete", {"resource_type": resource_type, "resource_id": resource_id},
                  idempotency_key, **kw)
