"""Incremental finalize: re-listed containers replace exactly their rows in the current view.

Each test syncs an org in full, changes it, applies an incremental run that re-lists only the
changed containers, and compares the view with a full sync of the changed org (another tenant).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tests.support.store import access_ent, app, app_grant, group, member, member_ent, user
from worker.model import Entitlement, Grant, Resource, container_key, row_key, split_row_key
from worker.store import queries
from worker.store.generations import discard_run, finalize_generation
from worker.store.incremental import Cursor, finalize_incremental, load_cursor, resources_with
from worker.store.tables import AccessChange, GrantRow, SyncRun, SyncStream, utcnow
from worker.store.writes import write_page

# An org as the connector lists it: container -> (resources, entitlements, grants).
Org = dict[str, tuple[list[Resource], list[Entitlement], list[Grant]]]


def org() -> Org:
    return {
        "users": ([user("u1"), user("u2"), user("u3")], [], []),
        "groups": ([group("g1"), group("g2")], [member_ent("g1"), member_ent("g2")], []),
        "apps": ([app("a1"), app("a2")], [access_ent("a1"), access_ent("a2")], []),
        "group-members:group:g1": ([], [], [member("g1", "u1"), member("g1", "u2")]),
        "group-members:group:g2": ([], [], [member("g2", "u2")]),
        "app-groups:app:a1": ([], [], [app_grant("a1", "group", "g1")]),
        "app-users:app:a1": ([], [], [app_grant("a1", "user", "u3")]),
        "app-groups:app:a2": ([], [], [app_grant("a2", "group", "g2")]),
    }


def _split(container: str) -> tuple[str, str]:
    kind, _, parent = container.partition(":")
    return kind, parent


def _write(store, t: int, run: int, lists: Org) -> None:
    with store.Session() as s:
        for container, (res, ents, grants) in lists.items():
            kind, parent = _split(container)
            assert container_key(kind, parent) == container
            write_page(s, t, run, res, ents, grants, container=container)
            s.add(SyncStream(run_id=run, kind=kind, parent=parent, state="done"))
        s.commit()


def full_sync(store, t: int, lists: Org) -> int:
    run = store.start_run(t)
    _write(store, t, run, lists)
    with store.Session() as s:
        finalize_generation(s, t, run)
    return run


def incremental(store, t: int, lists: Org, **kw):
    run = store.start_run(t)
    _write(store, t, run, lists)
    with store.Session() as s:
        return run, finalize_incremental(s, t, run, **kw)


def view(store, tenant: str) -> tuple[set, set, set]:
    with store.Session() as s:
        return ({(r.key, r.display_name) for r in queries.resources(s, tenant)},
                {e.id for e in queries.entitlements(s, tenant)},
                {(g.id, g.expanded, tuple(g.sources)) for g in queries.grants(s, tenant)})


def assert_equals_full_sync(store, tenant: str, changed: Org) -> None:
    other = store.tenant(f"{tenant}-full")
    full_sync(store, other, changed)
    assert view(store, tenant) == view(store, f"{tenant}-full")


def changes(store, run: int) -> set[tuple[str, str]]:
    with store.Session() as s:
        return {(c.change, c.grant_id) for c in s.scalars(sa.select(AccessChange).where(AccessChange.run_id == run))}


def test_relisted_group_membership_replaces_members_and_reexpands(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    changed["group-members:group:g1"] = ([], [], [member("g1", "u1"), member("g1", "u3")])  # u2 out, u3 in
    run, res = incremental(store, t, {"group-members:group:g1": changed["group-members:group:g1"]})
    assert_equals_full_sync(store, "acme", changed)
    assert changes(store, run) == {
        ("added", "group:g1:member:user:u3"), ("removed", "group:g1:member:user:u2"),
        ("removed", "app:a1:access:user:u2"),  # u2 held a1 only through g1; u3 is listed directly
    }
    assert (res.containers, res.added, res.removed) == (1, 1, 2)


def test_changes_shows_the_latest_run_whatever_its_kind(store):
    """After an incremental run, `oktasync changes` (queries.changes) shows what that run changed,
    not the full run whose view it applied to; --run still picks any run."""
    t = store.tenant()
    first = full_sync(store, t, org())
    changed = org()
    changed["group-members:group:g2"] = ([], [], [member("g2", "u2"), member("g2", "u3")])
    run, _ = incremental(store, t, {"group-members:group:g2": changed["group-members:group:g2"]})
    with store.Session() as s:
        shown, found = queries.changes(s, "acme")
        assert shown == run != first
        assert {(c.change, c.grant_id) for c in found} == {("added", "group:g2:member:user:u3"),
                                                          ("added", "app:a2:access:user:u3")}
        assert queries.changes(s, "acme", first) == (first, [])
        # a drift check (verify run) afterwards changes nothing, so it is not what `changes` shows
        s.add(SyncRun(tenant_id=t, kind="verify", state="succeeded", finished_at=utcnow()))
        s.commit()
        assert queries.changes(s, "acme")[0] == run


def test_derived_members_follow_the_users_a_run_stages(store):
    """A derived container (Everyone: every user) is not re-listed: each user the run stages gets
    its grant, a deleted user loses it, and the rest of the container stays."""
    t = store.tenant()
    everyone = {"group-members:group:g1": ([], [], [member("g1", "u1"), member("g1", "u2"), member("g1", "u3")])}
    full_sync(store, t, {**org(), **everyone})
    derived = [{"container": "group-members:group:g1", "entitlement": "group:g1:member"}]
    run, _ = incremental(store, t, {"users": ([user("u4"), user("u2")], [], [])}, partial_kinds=("users",),
                         deleted=("user:u3",), derived=derived)
    changed = {**org(), "group-members:group:g1": ([], [], [member("g1", u) for u in ("u1", "u2", "u4")])}
    changed["users"] = ([user("u1"), user("u2"), user("u4")], [], [])
    changed["app-users:app:a1"] = ([], [], [])  # u3 is gone
    assert_equals_full_sync(store, "acme", changed)
    assert changes(store, run) == {("added", "group:g1:member:user:u4"), ("added", "app:a1:access:user:u4"),
                                   ("removed", "group:g1:member:user:u3"), ("removed", "app:a1:access:user:u3")}
    with store.Session() as s:
        assert s.scalar(sa.select(GrantRow.container).where(GrantRow.id == "group:g1:member:user:u4")) == \
            "group-members:group:g1"
        # how the planner finds such a group in the view (a profile field, on both dialects)
        assert resources_with(s, t, "group", "type", "OKTA_GROUP") == ["group:g1", "group:g2"]
        assert resources_with(s, t, "group", "type", "BUILT_IN") == []


def test_emptied_container_loses_its_rows(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    changed["app-groups:app:a2"] = ([], [], [])
    run, _ = incremental(store, t, {"app-groups:app:a2": changed["app-groups:app:a2"]})
    assert_equals_full_sync(store, "acme", changed)
    assert changes(store, run) == {("removed", "app:a2:access:group:g2"), ("removed", "app:a2:access:user:u2")}


def test_partial_list_upserts_by_id(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    renamed = Resource("user", "u2", "Renamed", {"email": "u2@example.com"})
    changed["users"] = ([user("u1"), renamed, user("u3"), user("u4")], [], [])
    changed["group-members:group:g2"] = ([], [], [member("g2", "u2"), member("g2", "u4")])
    run, _ = incremental(store, t, {"users": ([renamed, user("u4")], [], []),
                                    "group-members:group:g2": changed["group-members:group:g2"]},
                         partial_kinds=("users",))
    assert_equals_full_sync(store, "acme", changed)
    assert changes(store, run) == {("added", "group:g2:member:user:u4"), ("added", "app:a2:access:user:u4")}


def test_deleted_resources_take_their_grants(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    changed["users"] = ([user("u1"), user("u3")], [], [])
    changed["group-members:group:g1"] = ([], [], [member("g1", "u1")])
    changed["group-members:group:g2"] = ([], [], [])
    changed["apps"] = ([app("a1")], [access_ent("a1")], [])
    del changed["app-groups:app:a2"]
    run, res = incremental(store, t, {}, deleted=("user:u2", "app:a2"))
    assert_equals_full_sync(store, "acme", changed)
    assert res.deleted == 2
    assert ("removed", "app:a2:access:group:g2") in changes(store, run)
    assert ("removed", "group:g1:member:user:u2") in changes(store, run)


def test_new_member_of_a_group_that_is_not_yet_a_resource_is_pruned_until_listed(store):
    t = store.tenant()
    full_sync(store, t, org())
    incremental(store, t, {"group-members:group:g2": ([], [], [member("g2", "u2"), member("g2", "u9")])})
    assert_equals_full_sync(store, "acme", org())  # u9 is no user of the view: its grant is pruned


def test_unapplied_incremental_run_leaves_the_view_and_is_discarded(store):
    t = store.tenant()
    full_sync(store, t, org())
    before = view(store, "acme")
    run = store.start_run(t)
    _write(store, t, run, {"group-members:group:g1": ([], [], [])})
    assert view(store, "acme") == before  # staged rows are not visible
    with store.Session() as s:
        discard_run(s, run, "killed")
        assert s.execute(sa.select(sa.func.count()).select_from(GrantRow).where(GrantRow.run_id == run)).scalar() == 0
    assert view(store, "acme") == before


def test_cursor_is_saved_with_the_change(store):
    t = store.tenant()
    full_sync(store, t, org())
    with store.Session() as s:
        assert load_cursor(s, t) is None
    mark = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    cursor = Cursor(mark, "/api/v1/logs?after=abc", ("uuid-1", "uuid-2"), "fp")
    run, _ = incremental(store, t, {}, cursor=cursor)
    with store.Session() as s:
        assert load_cursor(s, t) == cursor
        assert queries.current_run_id(s, "acme") != run  # the view stays the full run's generation


def test_a_resource_a_whole_list_no_longer_returns_is_gone_with_its_grants(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    changed["apps"] = ([app("a1")], [access_ent("a1")], [])  # a2 deactivated: the list no longer has it
    del changed["app-groups:app:a2"]
    run, _ = incremental(store, t, {"apps": changed["apps"]})
    assert_equals_full_sync(store, "acme", changed)
    assert changes(store, run) == {("removed", "app:a2:access:group:g2"), ("removed", "app:a2:access:user:u2")}


def test_a_listed_parent_whose_child_list_was_not_opened_has_an_empty_child(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    changed["group-members:group:g2"] = ([], [], [])  # g2 lost its last member: no member list is opened
    incremental(store, t, {"groups": ([group("g2")], [member_ent("g2")], [])}, partial_kinds=("groups",),
                partial_children=("group-members",))
    assert_equals_full_sync(store, "acme", changed)


def test_a_gone_resources_lists_read_in_the_same_run_are_dropped(store):
    t = store.tenant()
    full_sync(store, t, org())
    changed = org()
    changed["apps"] = ([app("a1")], [access_ent("a1")], [])
    del changed["app-groups:app:a2"]
    # a2 is deactivated, yet its group list was read too (a user's lifecycle event named it)
    incremental(store, t, {"apps": changed["apps"], "app-groups:app:a2": org()["app-groups:app:a2"]})
    assert_equals_full_sync(store, "acme", changed)


def test_a_list_of_a_resource_that_is_not_synced_is_dropped(store):
    t = store.tenant()
    full_sync(store, t, org())
    # a3 is inactive (not synced), yet an event about it made the run read its users
    incremental(store, t, {"app-users:app:a3": ([], [], [app_grant("a3", "user", "u1")])})
    assert_equals_full_sync(store, "acme", org())


def _rows_read(store, t: int, rows: dict[str, list[Grant]]) -> tuple[int, object]:
    """An incremental run that read principals' rows of a container alone (app-user streams, whose
    parent is the row key; 404 = an empty list), then finalized."""
    run = store.start_run(t)
    with store.Session() as s:
        for key, grants in rows.items():
            container, _principal = split_row_key(key)
            write_page(s, t, run, [], [], grants, container=container)
            s.add(SyncStream(run_id=run, kind="app-user", parent=key, state="done" if grants else "skipped"))
        s.commit()
    with store.Session() as s:
        return run, finalize_incremental(s, t, run, row_kinds=("app-user",))


def _annotations(store, tenant: str) -> dict[str, dict]:
    with store.Session() as s:
        return {g.id: dict(g.annotations) for g in queries.grants(s, tenant)}


def test_a_row_read_alone_replaces_only_that_row(store):
    """A user's row of an app, read alone: its status follows, the app's other rows stay, and a
    row the read did not find (404) is gone."""
    t = store.tenant()
    lists = org()
    lists["app-users:app:a1"] = ([], [], [app_grant("a1", "user", u, annotations={"status": "ACTIVE"})
                                          for u in ("u1", "u2", "u3")])
    full_sync(store, t, lists)
    inactive = app_grant("a1", "user", "u1", annotations={"status": "INACTIVE"})
    run, result = _rows_read(store, t, {row_key("app-users:app:a1", "user:u1"): [inactive],
                                        row_key("app-users:app:a1", "user:u3"): []})
    changed = org()
    changed["app-users:app:a1"] = ([], [], [inactive, lists["app-users:app:a1"][2][1]])
    assert_equals_full_sync(store, "acme", changed)
    assert _annotations(store, "acme")[inactive.id] == {"status": "INACTIVE"}
    assert _annotations(store, "acme")["app:a1:access:user:u2"] == {"status": "ACTIVE"}
    assert changes(store, run) == {("removed", "app:a1:access:user:u3")}  # u1 and u2 also hold it through g1
    assert result.containers == 0  # no container was replaced whole


def test_a_row_of_an_app_that_is_not_synced_is_dropped(store):
    t = store.tenant()
    full_sync(store, t, org())
    _rows_read(store, t, {row_key("app-users:app:a3", "user:u1"): [app_grant("a3", "user", "u1")]})
    assert_equals_full_sync(store, "acme", org())


def test_reexpansion_writes_only_the_difference(store):
    """A re-listed group that gained members: only their expanded grants are inserted (and the
    sources of one already held through another group follow), the unchanged ones are neither
    deleted nor written again."""
    t = store.tenant()
    lists = org()
    lists["users"] = ([user("u1"), user("u2"), user("u3"), user("u4")], [], [])
    lists["app-groups:app:a1"] = ([], [], [app_grant("a1", "group", "g1"), app_grant("a1", "group", "g2")])
    full_sync(store, t, lists)
    with store.Session() as s:
        ids_before = {g.id: g.sources for g in queries.grants(s, "acme") if g.expanded}
    changed = dict(lists)
    changed["group-members:group:g2"] = ([], [], [member("g2", "u2"), member("g2", "u4"), member("g2", "u1")])
    run, res = incremental(store, t, {"group-members:group:g2": changed["group-members:group:g2"]})
    assert_equals_full_sync(store, "acme", changed)
    # a1 and a2 (held by g2) to u4, a2 to u1: not every member's grant of both apps again (6)
    assert res.expanded == 3
    assert res.rows_removed == 0 and res.rows_moved == 2  # g2's unchanged member row stays as it is
    with store.Session() as s:
        after = {g.id: g.sources for g in queries.grants(s, "acme") if g.expanded}
    assert after["app:a1:access:user:u1"] == ("app:a1:access:group:g1", "app:a1:access:group:g2")
    assert {k: v for k, v in after.items() if k != "app:a1:access:user:u1" and k in ids_before} == \
        {k: v for k, v in ids_before.items() if k != "app:a1:access:user:u1"}
    assert changes(store, run) == {("added", "group:g2:member:user:u4"), ("added", "group:g2:member:user:u1"),
                                   ("added", "app:a1:access:user:u4"), ("added", "app:a2:access:user:u4"),
                                   ("added", "app:a2:access:user:u1")}


def test_a_relisted_container_rewrites_only_the_grants_that_changed(store):
    """A re-listed app's users: the one whose status changed is replaced (no access change: same
    grant), the unchanged ones stay as the view holds them, a new one is added, and the view
    equals a full sync's."""
    t = store.tenant()
    lists = org()
    lists["app-users:app:a1"] = ([], [], [app_grant("a1", "user", u, annotations={"status": "ACTIVE"})
                                          for u in ("u1", "u2")])
    full_sync(store, t, lists)
    relisted = [app_grant("a1", "user", "u1", annotations={"status": "SUSPENDED"}),
                app_grant("a1", "user", "u2", annotations={"status": "ACTIVE"}),
                app_grant("a1", "user", "u3", annotations={"status": "ACTIVE"})]
    run, res = incremental(store, t, {"app-users:app:a1": ([], [], relisted)})
    changed = dict(lists)
    changed["app-users:app:a1"] = ([], [], relisted)
    assert_equals_full_sync(store, "acme", changed)
    assert _annotations(store, "acme")["app:a1:access:user:u1"] == {"status": "SUSPENDED"}
    assert (res.rows_removed, res.rows_moved) == (1, 2)  # u1's old row out; u1's and u3's new rows in
    assert changes(store, run) == {("added", "app:a1:access:user:u3")}
