"""What the engine's steps need from their surroundings, in one object.

The Celery tasks build a `Runtime` once per worker process (PostgreSQL/SQLite engine, Redis
limiter, Celery sender); the embedded mode builds one with an in-process sender and
limiter. The steps are the same code either way.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from worker.engine.sender import Sender
from worker.store.db import one_connection
from worker.store.tables import Tenant
from worker.store.tenants import tenant_version

log = logging.getLogger("oktasync.engine")

EventSink = Callable[[str, dict[str, Any]], None]


def log_events(kind: str, data: dict[str, Any]) -> None:
    log.info("%s %s", kind, " ".join(f"{k}={v}" for k, v in data.items()))


class PageSource(Protocol):
    """What the engine asks of a tenant's API client (worker/connector/tenant_client.py)."""

    def get_page(self, url: str, headers: dict[str, str] | None = None) -> Any:
        """One page: `.items` (the body), `.next_url`. Raises instead of sleeping when it would have
        to wait; the connector's handle_error says what any error means (Skip, Retry, Fail)."""


@dataclass
class TenantContext:
    """A tenant's API client and sync options, cached per process until the tenant row changes."""

    tenant_id: int
    name: str
    client: PageSource
    options: Any  # worker.connector.SyncOptions
    version: datetime | None


@dataclass
class Runtime:
    # A sessionmaker; pinned() swaps in sessions bound to one held connection.
    sessions: Callable[[], Session]
    sender: Sender
    # Builds a TenantContext from a Tenant row (decrypts credentials, makes the client).
    make_tenant: Callable[[Any], TenantContext]
    tenant_max_streams: int = 8
    global_max_streams: int = 256
    # Admission bound on active runs for Beat's claim (None: every due tenant is claimed at once).
    max_active_runs: int | None = None
    countdown_cap: float = 60.0
    stall_timeout: float = 300.0
    run_stall_factor: float = 4.0
    max_page_attempts: int = 5
    max_redeliveries: int = 5
    events: EventSink = log_events
    # The embedded mode's read-ahead (worker/engine/read_ahead.py); None: each page step fetches its own page.
    read_ahead: Any = None
    _tenants: dict[int, TenantContext] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tenant(self, session: Session, tenant_id: int, known_version: datetime | None = None) -> TenantContext | None:
        """The cached context, rebuilt when the tenant row was updated (new credentials/options).
        `known_version`: the row's updated_at if the caller just read it (else it is read here)."""
        version = known_version or tenant_version(session, tenant_id)
        if version is None:
            return None
        with self._lock:
            ctx = self._tenants.get(tenant_id)
            if ctx is not None and ctx.version == version:
                return ctx
        row = session.get(Tenant, tenant_id, populate_existing=True)  # fresh: credentials may have changed
        if row is None:
            return None
        ctx = self.make_tenant(row)
        ctx.version = version
        with self._lock:
            self._tenants[tenant_id] = ctx
        return ctx

    @contextmanager
    def pinned(self) -> Iterator[Runtime]:
        """This runtime with its sessions taking turns on one database connection (a page task's
        few short transactions: one pool checkout and pre-ping instead of one each)."""
        with one_connection(self.sessions) as sessions:
            yield dataclasses.replace(self, sessions=sessions)

    def emit(self, kind: str, **data: Any) -> None:
        try:
            self.events(kind, data)
        except Exception:  # noqa: BLE001 - progress display must never break a sync
            log.exception("event sink failed")
