"""Tables of the grant store (SQLAlchemy 2.0 typed declarative).

Resources, entitlements and grants are keyed by (run_id, id): every sync run writes its own
generation, and readers follow `tenants.current_run_id` so they only ever see a complete run.
Ids are the ones of worker/model.py (`user:00u1`, `app:0oa1:access`, `app:0oa1:access:user:00u1`).
Timestamps are timezone-aware UTC on both dialects (see UTCDateTime).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

RUN_STATES = ("queued", "running", "finalizing", "succeeded", "failed")
ACTIVE_RUN_STATES = ("queued", "running", "finalizing")
# sync_runs.kind: what a run does with its result (worker/engine/kinds.py).
RUN_KINDS = ("full", "incremental", "verify")
VERIFY_KIND = "verify"
STREAM_STATES = ("pending", "active", "done", "failed", "skipped")
REQUEST_STATES = ("queued", "running", "succeeded", "failed", "dead")
AUTH_METHODS = ("api_token", "private_key_jwt")
CHANGE_KINDS = ("added", "removed")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out: timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL: comparable (for "skip unchanged rows" upserts) and compact.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
# Integer on SQLite so the column is a rowid alias (autoincrement); 64-bit on PostgreSQL.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


NOW = sa.func.current_timestamp()
EMPTY_OBJECT = sa.text("'{}'")
EMPTY_LIST = sa.text("'[]'")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Tenant(Base):
    """One Okta org. `credentials` is a Fernet token (see secrets.py), never clear text."""

    __tablename__ = "tenants"
    __table_args__ = (
        sa.CheckConstraint(_in("auth_method", AUTH_METHODS), name="auth_method"),
        # Beat's claim reads only the due rows (enabled, next_sync_at <= now), not all tenants.
        sa.Index("ix_tenants_enabled_next_sync_at", "enabled", "next_sync_at"),
        sa.Index("ix_tenants_enabled_next_incremental_at", "enabled", "next_incremental_at"),
        sa.Index("ix_tenants_enabled_next_verify_at", "enabled", "next_verify_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    domain: Mapped[str] = mapped_column(sa.String(255))
    auth_method: Mapped[str] = mapped_column(sa.String(32))
    credentials: Mapped[bytes] = mapped_column(sa.LargeBinary)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)
    sync_interval: Mapped[int] = mapped_column(default=3600, server_default="3600")  # seconds
    next_sync_at: Mapped[datetime | None]
    # Incremental runs and drift checks between full syncs (seconds; NULL: off). Their due time is
    # NULL exactly when they are off, so the claim's `<= now` never meets a tenant without them.
    incremental_interval: Mapped[int | None]
    next_incremental_at: Mapped[datetime | None]
    verify_interval: Mapped[int | None]
    next_verify_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    current_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sync_runs.id", ondelete="SET NULL", use_alter=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)

    def __repr__(self) -> str:  # never the credentials, not even encrypted
        return f"<Tenant {self.id} {self.name!r} {self.domain} {self.auth_method}>"


class SyncRun(Base):
    """One sync of one tenant; at most one active (queued/running/finalizing) per tenant."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        sa.CheckConstraint(_in("state", RUN_STATES), name="state"),
        sa.Index("uq_sync_runs_one_active", "tenant_id", unique=True,
                 sqlite_where=sa.text(_in("state", ACTIVE_RUN_STATES)),
                 postgresql_where=sa.text(_in("state", ACTIVE_RUN_STATES))),
        sa.Index("ix_sync_runs_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(sa.String(16), default="queued", server_default="queued")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)
    warnings: Mapped[list[Any]] = mapped_column(default=list, server_default=EMPTY_LIST)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # SyncOptions.fingerprint() of the options the run started with (None: runs before 0002).
    options_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    # When Beat found the tenant due (None: a run started by hand); freshness lag = due -> finished.
    due_at: Mapped[datetime | None]
    # "full" (a new generation, switched in whole), "incremental" (re-lists the containers its
    # plan names and replaces exactly those in the current view; worker/store/incremental.py) or
    # "verify" (a full listing compared with the current view, then discarded; worker/store/drift.py).
    kind: Mapped[str] = mapped_column(sa.String(16), default="full", server_default="full")
    # An incremental run's plan: why, which lists are partial, which resources were deleted, the
    # cursor to save on success (worker/engine/incremental.py writes it).
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)

    def __repr__(self) -> str:
        return f"<SyncRun {self.id} tenant={self.tenant_id} {self.state}>"


class SyncStream(Base):
    """One list to crawl in a run (users, members of group X, ...), with its cursor.

    (run_id, kind, parent) is unique so a redelivered page task that opens child streams again
    can insert them with ON CONFLICT DO NOTHING; `parent` is '' for top-level lists.
    """

    __tablename__ = "sync_streams"
    __table_args__ = (
        sa.CheckConstraint(_in("state", STREAM_STATES), name="state"),
        sa.UniqueConstraint("run_id", "kind", "parent"),
        sa.Index("ix_sync_streams_run_id_state", "run_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("sync_runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(64))
    parent: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    url: Mapped[str | None] = mapped_column(sa.Text)  # first page of the list
    cursor: Mapped[str | None] = mapped_column(sa.Text)  # next page (Okta's Link rel=next)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending", server_default="pending")
    pages: Mapped[int] = mapped_column(default=0, server_default="0")
    items: Mapped[int] = mapped_column(default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None]
    deferred_until: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)

    def __repr__(self) -> str:
        return f"<SyncStream {self.id} run={self.run_id} {self.kind} {self.parent!r} {self.state}>"


# Every resource, entitlement and grant row names the list that produced it, its *container*:
# the stream's kind and parent (`users`, `group-members:group:00g1`; worker.model.container_key). An
# incremental run re-lists whole containers and replaces exactly their rows in the current view.
# Rows derived in finalize (expanded grants) and written through by provisioning have ''.


STATIC_CONTAINER = "static"  # rows no list produces (the standard admin roles)


class ResourceRow(Base):
    __tablename__ = "resources"
    __table_args__ = (sa.Index("ix_resources_run_id_resource_type", "run_id", "resource_type"),
                      sa.Index("ix_resources_run_id_container", "run_id", "container"),
                      # a deleted resource's owned resources (a user's API tokens), found by the incremental finalize
                      sa.Index("ix_resources_run_id_parent", "run_id", "parent"))

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(512), primary_key=True)  # "<type>:<rid>"
    resource_type: Mapped[str] = mapped_column(sa.String(32))
    resource_id: Mapped[str] = mapped_column(sa.String(255))
    display_name: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)
    parent: Mapped[str | None] = mapped_column(sa.String(512))  # "<type>:<id>" of the owner
    container: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")  # worker.model.container_key


class EntitlementRow(Base):
    __tablename__ = "entitlements"
    __table_args__ = (sa.Index("ix_entitlements_run_id_resource", "run_id", "resource"),
                      sa.Index("ix_entitlements_run_id_container", "run_id", "container"))

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(512), primary_key=True)  # "<type>:<rid>:<slug>"
    resource: Mapped[str] = mapped_column(sa.String(512))  # "<type>:<rid>"
    resource_type: Mapped[str] = mapped_column(sa.String(32))
    resource_id: Mapped[str] = mapped_column(sa.String(255))
    slug: Mapped[str] = mapped_column(sa.String(32))
    display_name: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    container: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")  # worker.model.container_key


class GrantRow(Base):
    """A grant; `expanded` rows were derived from a group's grant (sources = that grant's id)."""

    __tablename__ = "grants"
    __table_args__ = (
        sa.Index("ix_grants_run_id_principal", "run_id", "principal_type", "principal_id"),
        sa.Index("ix_grants_run_id_entitlement_id", "run_id", "entitlement_id"),
        sa.Index("ix_grants_run_id_container", "run_id", "container"),
    )

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(600), primary_key=True)
    entitlement_id: Mapped[str] = mapped_column(sa.String(512))
    principal_type: Mapped[str] = mapped_column(sa.String(32))
    principal_id: Mapped[str] = mapped_column(sa.String(255))
    expanded: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    sources: Mapped[list[Any]] = mapped_column(default=list, server_default=EMPTY_LIST)
    annotations: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)
    container: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")  # worker.model.container_key


class ProvisioningRequest(Base):
    __tablename__ = "provisioning_requests"
    __table_args__ = (
        sa.CheckConstraint(_in("state", REQUEST_STATES), name="state"),
        sa.UniqueConstraint("tenant_id", "idempotency_key"),
        sa.Index("ix_provisioning_requests_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)
    payload_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 hex of the canonical payload
    state: Mapped[str] = mapped_column(sa.String(16), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<ProvisioningRequest {self.id} {self.kind} {self.idempotency_key!r} {self.state}>"


class AccessChange(Base):
    """A grant added or removed by a run, compared with the tenant's previous current run."""

    __tablename__ = "access_changes"
    __table_args__ = (
        sa.CheckConstraint(_in("change", CHANGE_KINDS), name="change"),
        sa.UniqueConstraint("run_id", "grant_id"),
        sa.Index("ix_access_changes_tenant_id_run_id", "tenant_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("sync_runs.id", ondelete="CASCADE"))
    grant_id: Mapped[str] = mapped_column(sa.String(600))
    change: Mapped[str] = mapped_column(sa.String(8))
    entitlement_id: Mapped[str] = mapped_column(sa.String(512))
    principal_type: Mapped[str] = mapped_column(sa.String(32))
    principal_id: Mapped[str] = mapped_column(sa.String(255))
    expanded: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)


class SyncCursor(Base):
    """Where a tenant's next incremental run starts: the System Log position after the last
    successful run, the timestamp watermark for the lastUpdated filters, the uuids of events in
    the overlap window (read again next time, skipped by uuid), the options it was taken with."""

    __tablename__ = "sync_cursors"

    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int | None]
    log_after: Mapped[str | None] = mapped_column(sa.Text)
    watermark: Mapped[datetime]
    recent_event_ids: Mapped[list[Any]] = mapped_column(default=list, server_default=EMPTY_LIST)
    options_fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)


class LimiterState(Base):
    """What the embedded mode's in-process rate limiter learned of a tenant's Okta buckets (each
    bucket's limit, its window's remaining and reset), saved after a run for the next one, so a run
    minutes later starts from Okta's last answers instead of waiting for new ones. Workers keep the
    same state in Redis (worker/okta/ratelimit/redis_backend.py)."""

    __tablename__ = "limiter_states"

    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_OBJECT)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)
