"""A tenant's current view as export records: everything the store keeps, nothing left out.

Four kinds, in this order, each in id order: `resource_type`, `resource`, `entitlement`, `grant`.
`iter_records` gives them as the JSON lines of `oktasync export` (docs/export.schema.json);
`iter_csv` gives one kind as flat rows for a spreadsheet (`--format csv`). Records are streamed
from the database, never all held in memory. Use both inside `queries.snapshot(engine)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from worker.model import ENTITLEMENT_SLUGS, RESOURCE_TYPES
from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, Tenant

KINDS = ("resource_type", "resource", "entitlement", "grant")

# Per resource type: display name and baton-sdk's traits (reference: baton-okta's resource types).
_TYPE_INFO: dict[str, tuple[str, tuple[str, ...]]] = {
    "user": ("User", ("user",)),
    "group": ("Group", ("group",)),
    "app": ("App", ("app",)),
    "role": ("Role", ("role",)),
    "custom-role": ("Custom Role", ("role",)),
    "resource-set": ("Resource Set", ("app",)),
    "resourceset-binding": ("Resource Set Binding", ("app",)),
    "api-token": ("API Token", ("secret",)),
}
assert set(_TYPE_INFO) == set(RESOURCE_TYPES), "every resource type needs its export name and traits"

# Every entitlement gives access by being assigned (baton's purpose ASSIGNMENT), none is a permission.
PURPOSE = "assignment"
# Entitlement descriptions from the resource's display name: baton-okta's wording (it gives none for
# the two resource-set types; theirs are ours).
_DESCRIPTION = {
    "group": "Member of {} group in Okta",
    "app": "Has access to the {} app in Okta",
    "role": "Has the {} role in Okta",
    "custom-role": "Has the {} role in Okta",
    "resource-set": "Custom roles bound to the {} resource set in Okta",
    "resourceset-binding": "Member of a role binding of the {} resource set in Okta",
}
assert set(_DESCRIPTION) == set(ENTITLEMENT_SLUGS), "every entitlement type needs a description"


class NoCurrentRun(LookupError):
    """The tenant has no finished sync yet."""


def entitlement_description(resource_type: str, resource_name: str) -> str:
    return _DESCRIPTION[resource_type].format(resource_name)


def _run_id(conn: sa.Connection, tenant_id: int) -> int:
    run_id = conn.execute(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id)).scalar_one_or_none()
    if run_id is None:
        raise NoCurrentRun(f"tenant {tenant_id} has no finished sync yet")
    return run_id


def _stream(conn: sa.Connection, stmt: sa.Select[Any], batch: int) -> Iterator[Any]:
    return iter(conn.execution_options(stream_results=True, yield_per=batch).execute(stmt))


R, E, G = ResourceRow.__table__, EntitlementRow.__table__, GrantRow.__table__


def _resource_types() -> Iterator[dict[str, Any]]:
    for rtype in RESOURCE_TYPES:
        name, traits = _TYPE_INFO[rtype]
        slug = ENTITLEMENT_SLUGS.get(rtype, (None,))[0]
        yield {"kind": "resource_type", "id": rtype, "display_name": name, "traits": list(traits),
               "entitlement_slug": slug}


def _resources(conn: sa.Connection, run_id: int, batch: int) -> Iterator[dict[str, Any]]:
    for row in _stream(conn, sa.select(R).where(R.c.run_id == run_id).order_by(R.c.id), batch):
        yield {"kind": "resource", "id": row.id, "resource_type": row.resource_type, "resource_id": row.resource_id,
               "display_name": row.display_name, "parent": row.parent, "profile": row.profile or {}}


def _entitlements(conn: sa.Connection, run_id: int, batch: int) -> Iterator[dict[str, Any]]:
    r = R.alias("r")
    stmt = (sa.select(E, r.c.display_name.label("resource_name"))
            .join(r, sa.and_(r.c.run_id == E.c.run_id, r.c.id == E.c.resource), isouter=True)
            .where(E.c.run_id == run_id).order_by(E.c.id))
    for row in _stream(conn, stmt, batch):
        yield {"kind": "entitlement", "id": row.id, "resource": row.resource, "resource_type": row.resource_type,
               "slug": row.slug, "display_name": row.display_name,
               "description": entitlement_description(row.resource_type, row.resource_name or row.resource_id),
               "purpose": PURPOSE, "grantable_to": list(ENTITLEMENT_SLUGS[row.resource_type][1])}


def _grants(conn: sa.Connection, run_id: int, batch: int) -> Iterator[dict[str, Any]]:
    for row in _stream(conn, sa.select(G).where(G.c.run_id == run_id).order_by(G.c.id), batch):
        yield {"kind": "grant", "id": row.id, "entitlement": row.entitlement_id,
               "principal": f"{row.principal_type}:{row.principal_id}", "expanded": bool(row.expanded),
               "sources": list(row.sources or []), "annotations": row.annotations or {}}


def iter_records(conn: sa.Connection, tenant_id: int, kinds: Iterable[str] = KINDS,
                 batch: int = 2000) -> Iterator[dict[str, Any]]:
    """The export records of the tenant's current view, kind by kind in KINDS order."""
    return _records(conn, _run_id(conn, tenant_id), set(kinds), batch)


def _records(conn: sa.Connection, run_id: int, kinds: set[str], batch: int) -> Iterator[dict[str, Any]]:
    if "resource_type" in kinds:
        yield from _resource_types()
    if "resource" in kinds:
        yield from _resources(conn, run_id, batch)
    if "entitlement" in kinds:
        yield from _entitlements(conn, run_id, batch)
    if "grant" in kinds:
        yield from _grants(conn, run_id, batch)


# ---------------------------------------------------------------- CSV

# Grant annotations the connector writes, each its own column (docs/store.md); any other key
# lands in `other_annotations` as JSON, so nothing is lost.
GRANT_ANNOTATION_COLUMNS = {
    "scope": "assignment_scope",          # app user: USER (direct) or GROUP (through a group)
    "status": "assignment_status",        # app user: Okta's status of the assignment
    "priority": "assignment_priority",    # app group: the assignment's priority
    "id": "role_assignment_id",           # role / custom-role: Okta's role assignment id
    "resource-set": "role_resource_set",  # custom-role: the resource set it is bound to
    "targets": "role_targets",            # role: what a scoped role is limited to (JSON); empty = org-wide
    "member_id": "binding_member_id",     # resourceset-binding: Okta's member id
}

CSV_COLUMNS: dict[str, list[str]] = {
    "resource_type": ["id", "display_name", "traits", "entitlement_slug"],
    "resource": ["id", "resource_type", "resource_id", "display_name", "parent", "profile"],
    "entitlement": ["id", "resource", "resource_type", "slug", "display_name", "description",
                    "purpose", "grantable_to"],
    "grant": ["id", "entitlement", "entitlement_name", "resource", "resource_type", "resource_name",
              "principal", "principal_type", "principal_id", "principal_name", "expanded", "sources",
              *GRANT_ANNOTATION_COLUMNS.values(), "other_annotations"],
}


# A spreadsheet runs a cell starting with one of these as a formula; names come from the org, where
# users may edit their own profile (OWASP "CSV injection"): such a cell gets a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """Scalars as text (true/false for booleans, empty for null), non-empty lists and objects as JSON,
    empty ones as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if value else ""
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def _grant_rows(conn: sa.Connection, run_id: int, batch: int) -> Iterator[dict[str, Any]]:
    """Grants with the names a spreadsheet reader wants next to the ids (entitlement, its
    resource, the principal), by joins on the same run."""
    e, r, p = E.alias("e"), R.alias("r"), R.alias("p")
    stmt = (sa.select(G, e.c.display_name.label("entitlement_name"), e.c.resource, e.c.resource_type,
                      r.c.display_name.label("resource_name"), p.c.display_name.label("principal_name"))
            .join(e, sa.and_(e.c.run_id == G.c.run_id, e.c.id == G.c.entitlement_id), isouter=True)
            .join(r, sa.and_(r.c.run_id == G.c.run_id, r.c.id == e.c.resource), isouter=True)
            .join(p, sa.and_(p.c.run_id == G.c.run_id,
                             p.c.id == G.c.principal_type + ":" + G.c.principal_id), isouter=True)
            .where(G.c.run_id == run_id).order_by(G.c.id))
    for row in _stream(conn, stmt, batch):
        annotations = dict(row.annotations or {})
        out = {"id": row.id, "entitlement": row.entitlement_id, "entitlement_name": row.entitlement_name,
               "resource": row.resource, "resource_type": row.resource_type, "resource_name": row.resource_name,
               "principal": f"{row.principal_type}:{row.principal_id}", "principal_type": row.principal_type,
               "principal_id": row.principal_id, "principal_name": row.principal_name,
               "expanded": bool(row.expanded), "sources": list(row.sources or [])}
        for key, column in GRANT_ANNOTATION_COLUMNS.items():
            out[column] = annotations.pop(key, None)
        out["other_annotations"] = annotations
        yield out


def iter_csv(conn: sa.Connection, tenant_id: int, kind: str, batch: int = 2000) -> Iterator[list[str]]:
    """One kind as CSV rows: the header, then one row per record (cells as `_cell` writes them).
    Raises NoCurrentRun before anything is yielded."""
    run_id = _run_id(conn, tenant_id)
    records = _grant_rows(conn, run_id, batch) if kind == "grant" else _records(conn, run_id, {kind}, batch)
    columns = CSV_COLUMNS[kind]
    return _rows(columns, records)


def _rows(columns: list[str], records: Iterator[dict[str, Any]]) -> Iterator[list[str]]:
    yield columns
    for record in records:
        yield [_cell(record.get(c)) for c in columns]
