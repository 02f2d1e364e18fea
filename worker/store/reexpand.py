"""Re-expanding group grants in place for an incremental run: only the difference is written.

A full run expands every group grant of a new generation (generations.expand_group_grants). An
incremental run changes a few grants of a view that already holds their expansion, so it builds
the expected expansion of the touched entitlements into a temporary table and deletes, inserts
or updates only the expanded grants that differ: a group of 20,000 members that gained one
member costs one inserted row, not 20,000 deleted and 20,000 inserted (nor 40,000 read back).
A membership change recomputes the entitlements the group holds for the members who joined or
left it only, so it also reads what changed, not the group's 20,000 members.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.store.generations import _rows, chunks_of, expansion, select_ids
from worker.store.tables import GrantRow, JSONType

G = GrantRow.__table__
# The expected expansion, one row per (entitlement, member): the grant rows expansion() selects.
EXPECTED = sa.Table(
    "oktasync_expected_expansion", sa.MetaData(),
    sa.Column("run_id", sa.Integer), sa.Column("id", sa.String, primary_key=True),
    sa.Column("entitlement_id", sa.String), sa.Column("principal_type", sa.String),
    sa.Column("principal_id", sa.String), sa.Column("expanded", sa.Boolean),
    sa.Column("sources", JSONType), sa.Column("annotations", JSONType),
    prefixes=["TEMPORARY"],
)
COLUMNS = ["run_id", "id", "entitlement_id", "principal_type", "principal_id", "expanded", "sources", "annotations"]
Row = tuple[str, str, str, bool]  # (entitlement_id, principal_type, principal_id, expanded), as finalize records


def _drop(session: Session) -> None:
    session.execute(sa.text(f"DROP TABLE IF EXISTS {EXPECTED.name}"))


def _rows_of(result: Iterable[sa.Row]) -> dict[str, Row]:
    return {r.id: (r.entitlement_id, r.principal_type, r.principal_id, True) for r in result}


def reexpand(session: Session, view: int, entitlements: Collection[str], for_users: Mapping[str, Collection[str]],
             expand_types: tuple[str, ...]) -> tuple[dict[str, Row], dict[str, Row]]:
    """Make the view's expanded grants of `entitlements`, and of each entitlement of `for_users`
    for those users only, what its groups give now; returns the expanded grants (removed, added).
    Sources are updated in place."""
    if not (entitlements or for_users) or not expand_types:
        return {}, {}
    _drop(session)
    EXPECTED.create(session.connection())
    # (entitlements, users or None for all): what to recompute, in statements of bounded size.
    # The entitlements of one group share its joined or left users: one statement for them all.
    scopes: list[tuple[list[str], list[str] | None]] = [(chunk, None) for chunk in chunks_of(entitlements)]
    by_users: dict[frozenset[str], set[str]] = {}
    for ent, users in for_users.items():
        if ent not in entitlements:  # re-expanded whole already
            by_users.setdefault(frozenset(users), set()).add(ent)
    scopes += [(ents, users) for user_set, ent_set in sorted(by_users.items(), key=lambda kv: sorted(kv[0]))
               for ents in chunks_of(ent_set) for users in chunks_of(user_set)]
    for ents, users in scopes:
        session.execute(sa.insert(EXPECTED).from_select(
            COLUMNS, expansion(session, view, expand_types, ents, listed_only=True, members=users)))
    e = EXPECTED
    removed: dict[str, Row] = {}
    for ents, users in scopes:
        of_users = () if users is None else (G.c.principal_type == "user", G.c.principal_id.in_(users))
        removed |= _rows_of(session.execute(sa.select(G.c.id, G.c.entitlement_id, G.c.principal_type, G.c.principal_id).where(
            G.c.run_id == view, G.c.expanded.is_(True), G.c.entitlement_id.in_(ents), *of_users,
            ~sa.exists().where(e.c.id == G.c.id))))
    for ids in chunks_of(removed):
        _rows(session, sa.delete(G).where(G.c.run_id == view, G.c.id.in_(ids)))
    missing = ~sa.exists().where(G.c.run_id == view, G.c.id == e.c.id)
    added = _rows_of(session.execute(sa.select(e.c.id, e.c.entitlement_id, e.c.principal_type, e.c.principal_id)
                                     .where(missing)))
    if added:
        session.execute(sa.insert(G).from_select(COLUMNS, sa.select(*[e.c[c] for c in COLUMNS]).where(missing)))
    # Another group now also (or no longer) gives the grant: same access, other sources.
    # Driven by the expected rows (a look-up of each in the view), not by the view's grants.
    theirs = sa.select(e.c.sources).where(e.c.id == G.c.id).scalar_subquery()
    moved = select_ids(session, sa.select(e.c.id).where(sa.exists().where(
        G.c.run_id == view, G.c.id == e.c.id, G.c.expanded.is_(True), G.c.sources != e.c.sources)))
    for ids in chunks_of(moved):
        session.execute(sa.update(G).where(G.c.run_id == view, G.c.id.in_(ids)).values(sources=theirs))
    _drop(session)
    return removed, added

