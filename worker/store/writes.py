"""Bulk, idempotent page writes into a run's generation.

Each page task calls `write_page` with what it fetched; rows are upserted under the run's id
(INSERT ... ON CONFLICT DO UPDATE ... WHERE something changed), so a redelivered page writes
nothing new. Keys are de-duplicated inside a batch (last version wins; PostgreSQL refuses to
touch one row twice in one statement). On PostgreSQL a batch is one statement with the rows as
one JSON parameter (`_pg_recordset_upsert`); on SQLite rows go to one cached single-row upsert
statement as executemany batches of at most `rows_per_statement` rows, which also keeps any
multi-row rendering a driver may do under the dialect's bind-parameter limit.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.model import PRINCIPAL_TYPES, RESOURCE_TYPES, Entitlement, Grant, Resource
from worker.store.db import SQLITE_BEGIN_OPTION, immediate
from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, SyncRun

# Bind-parameter limits per statement: SQLite >= 3.32 allows 32766, PostgreSQL's protocol 65535.
PARAM_LIMITS = {"sqlite": 32766, "postgresql": 65535}
# Past ~1000 rows a statement, bigger VALUES lists stop paying off and cost compile time.
MAX_ROWS_PER_STATEMENT = 1000
# PostgreSQL recordset upserts: rows per statement (bounds one statement's memory, not parameters).
PG_RECORDSET_ROWS = 5000
WRITABLE_RUN_STATES = ("queued", "running")


class RunNotWritable(RuntimeError):
    """The run does not exist, belongs to another tenant, or is no longer collecting pages."""


def rows_per_statement(dialect: str, ncols: int) -> int:
    return max(1, min(MAX_ROWS_PER_STATEMENT, PARAM_LIMITS.get(dialect, 999) // ncols))


def _insert(dialect: str, table: sa.Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"grant store does not support the {dialect!r} dialect")


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: sa.Table, columns: tuple[str, ...], key: tuple[str, ...],
                      update: bool) -> Any:
    """One single-row upsert statement per (table, columns), built once and run with a list of
    rows (executemany): SQLAlchemy compiles it once and caches it, the driver batches the rows
    (sqlite3's executemany loop; psycopg 3 pipelines them in one round trip). A multi-row
    VALUES statement had to be compiled per page and ran at ~2,000 grants/s."""
    stmt = _insert(dialect, table)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(key))
    others = [c for c in columns if c not in key]
    return stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={c: stmt.excluded[c] for c in others},
        where=sa.or_(*[table.c[c].is_distinct_from(stmt.excluded[c]) for c in others]),
    )


def _pg_record_type(column: sa.Column[Any]) -> str:
    t = column.type
    if isinstance(t, sa.JSON):
        return "jsonb"
    if isinstance(t, sa.Boolean):
        return "boolean"
    if isinstance(t, sa.Integer):
        return "bigint"
    return "text"


@functools.lru_cache(maxsize=64)
def _pg_recordset_upsert(table: sa.Table, columns: tuple[str, ...], key: tuple[str, ...], update: bool) -> Any:
    """PostgreSQL: INSERT ... SELECT FROM json_to_recordset(:rows) ON CONFLICT ...

    A page's rows go as one JSON array parameter (orjson, in C) that the server unpacks into
    typed columns (JSON null -> SQL NULL): one statement per chunk, nothing compiled per page,
    nothing per row or per value in the driver. Per-column arrays (unnest) cost more client CPU
    than anything else in a page: psycopg's text-array dumper escapes every element in Python.
    """
    cols = ", ".join(columns)
    record = ", ".join(f"{c} {_pg_record_type(table.c[c])}" for c in columns)
    sql = (f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM json_to_recordset(CAST(:rows AS json)) "
           f"AS r({record}) ON CONFLICT ({', '.join(key)}) ")
    others = [c for c in columns if c not in key]
    if update and others:
        sets = ", ".join(f"{c} = excluded.{c}" for c in others)
        changed = " OR ".join(f"{table.name}.{c} IS DISTINCT FROM excluded.{c}" for c in others)
        sql += f"DO UPDATE SET {sets} WHERE {changed}"
    else:
        sql += "DO NOTHING"
    return sa.text(sql)


def upsert_rows(conn: Session | sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
                key: Sequence[str] = ("run_id", "id"), *, update: bool = True) -> int:
    """Upsert `rows` (de-duplicated on `key`, last one wins) in chunks; returns rows sent.

    With update=True a conflicting row is rewritten only when a column differs, so writing the
    same rows twice changes nothing; update=False keeps the first version (DO NOTHING).
    """
    if not rows:
        return 0
    row_key = operator.itemgetter(*key)
    unique = list({row_key(row): row for row in rows}.values())
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    columns = list(unique[0])
    if dialect == "postgresql":
        # One statement per chunk, the rows as one JSON parameter (see _pg_recordset_upsert).
        stmt = _pg_recordset_upsert(table, tuple(columns), tuple(key), update)
        for start in range(0, len(unique), PG_RECORDSET_ROWS):
            rows_json = orjson.dumps(unique[start:start + PG_RECORDSET_ROWS], option=orjson.OPT_NON_STR_KEYS)
            conn.execute(stmt, {"rows": rows_json.decode()})
        return len(unique)
    stmt = _upsert_statement(dialect, table, tuple(columns), tuple(key), update)
    size = rows_per_statement(dialect, len(columns))
    for start in range(0, len(unique), size):
        conn.execute(stmt, unique[start:start + size])
    return len(unique)


def resource_row(run_id: int, r: Resource, container: str = "") -> dict[str, Any]:
    if r.type not in RESOURCE_TYPES:
        raise ValueError(f"resource {r.key!r}: unknown resource type {r.type!r} (one of {', '.join(RESOURCE_TYPES)})")
    return {"run_id": run_id, "id": r.key, "resource_type": r.type, "resource_id": r.id,
            "display_name": r.display_name or "", "profile": dict(r.profile), "parent": r.parent,
            "container": container}


def entitlement_row(run_id: int, e: Entitlement, container: str = "") -> dict[str, Any]:
    return {"run_id": run_id, "id": e.id, "resource": e.resource, "resource_type": e.resource_type,
            "resource_id": e.resource_id, "slug": e.slug, "display_name": e.display_name or "", "container": container}


def grant_row(run_id: int, g: Grant, container: str = "") -> dict[str, Any]:
    if g.principal_type not in PRINCIPAL_TYPES:
        raise ValueError(f"grant {g.id!r}: principal type {g.principal_type!r} is not one of {', '.join(PRINCIPAL_TYPES)}")
    return {"run_id": run_id, "id": g.id, "entitlement_id": g.entitlement_id,
            "principal_type": g.principal_type, "principal_id": g.principal_id,
            "expanded": bool(g.expanded), "sources": list(g.sources), "annotations": dict(g.annotations),
            "container": container}


def check_run_writable(conn: Session | sa.Connection, tenant_id: int, run_id: int) -> None:
    # FOR SHARE (PostgreSQL): concurrent pages share it, but moving the run to finalizing or
    # failed waits until this page commits, so no page lands after the run's state changed.
    # (SQLite writers already serialize on BEGIN IMMEDIATE.)
    row = conn.execute(sa.select(SyncRun.tenant_id, SyncRun.state).where(SyncRun.id == run_id)
                       .with_for_update(read=True)).first()
    if row is None:
        raise RunNotWritable(f"sync run {run_id} does not exist")
    if row.tenant_id != tenant_id:
        raise RunNotWritable(f"sync run {run_id} belongs to tenant {row.tenant_id}, not {tenant_id}")
    if row.state not in WRITABLE_RUN_STATES:
        raise RunNotWritable(f"sync run {run_id} is {row.state}; pages are accepted only while queued or running")


def _begin_as_writer(conn: Session | sa.Connection) -> None:
    """On SQLite, start the transaction with BEGIN IMMEDIATE when none is open yet: a deferred
    transaction that reads first fails with "database is locked" instead of waiting when another
    process commits in between. A caller that reads before writing should call
    worker.store.db.immediate(session) itself at the start of its transaction."""
    if conn.in_transaction():
        return
    if isinstance(conn, Session):
        if conn.get_bind().dialect.name == "sqlite":
            immediate(conn)
    elif conn.dialect.name == "sqlite":
        conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def write_page(conn: Session | sa.Connection, tenant_id: int, run_id: int,
               resources: Iterable[Resource] = (), entitlements: Iterable[Entitlement] = (),
               grants: Iterable[Grant] = (), *, check_run: bool = True, container: str = "") -> dict[str, int]:
    """Upsert one page of results into run `run_id`'s generation; the caller commits.

    The run id is the fencing token: pages for a run that is not queued/running (finalized,
    failed, another tenant's) raise RunNotWritable instead of leaking into a dead generation.
    `container` names the list the page came from (worker.model.container_key). Returns the number
    of distinct rows written per kind.
    """
    _begin_as_writer(conn)
    if check_run:
        check_run_writable(conn, tenant_id, run_id)
    return {
        "resources": upsert_rows(conn, ResourceRow.__table__, [resource_row(run_id, r, container) for r in resources]),
        "entitlements": upsert_rows(conn, EntitlementRow.__table__, [entitlement_row(run_id, e, container) for e in entitlements]),
        "grants": upsert_rows(conn, GrantRow.__table__, [grant_row(run_id, g, container) for g in grants]),
    }
