"""The System Log reader and the planner's fallbacks, on stub pages (no Okta needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from worker.connector import SyncOptions
from worker.connector.incremental import FullSync, Plan, build_plan, plan_incremental
from worker.connector.system_log import read_log
from worker.okta.errors import OktaInvalidRequest, OktaPermissionDenied
from worker.store.incremental import Cursor

NOW = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)


@dataclass
class Page:
    items: list
    next_url: str | None
    response: object = field(default=None)


def event(uuid: str, kind: str, *targets: tuple[str, str], at: datetime = NOW) -> dict:
    return {"uuid": uuid, "eventType": kind, "published": at.isoformat().replace("+00:00", "Z"),
            "target": [{"id": i, "type": t} for t, i in targets]}


def pages(*bodies: list) -> callable:
    """Stub pages of one event each asked for (limit=1: every non-empty page is full), then the head."""
    calls = iter([*bodies, []])
    return lambda url: Page(next(calls), "/api/v1/logs?after=x&limit=1")


def test_reads_until_an_empty_page_and_skips_seen_uuids():
    got = read_log(pages([event("a", "x"), event("b", "x")], [event("c", "x")]), NOW - timedelta(minutes=5),
                   seen={"a"})
    assert [e["uuid"] for e in got.events] == ["b", "c"] and got.pages == 3


def test_a_short_page_ends_the_read_and_the_next_read_resumes_there():
    """A page with fewer events than its limit holds all there was: no request for the empty head.
    What is stored after it is read by the next run, from the link the read saved."""
    asked, get = linked([event("a", "x"), event("b", "x")], [event("c", "x")], limit=2)
    got = read_log(get, NOW - timedelta(minutes=5))
    assert [e["uuid"] for e in got.events] == ["a", "b", "c"] and got.pages == 2 and len(asked) == 2
    assert got.last_link == "/api/v1/logs?after=2&limit=2"


def test_a_log_without_permission_means_a_full_sync_with_a_warning():
    def denied(url):
        raise OktaPermissionDenied("403", status=403)
    cursor = Cursor(NOW, None, (), SyncOptions().fingerprint())
    decided = plan_incremental(denied, cursor, SyncOptions())
    assert isinstance(decided, FullSync)
    assert "okta.logs.read" in decided.reason and "okta.logs.read" in decided.warning


def test_events_mark_containers_dirty_and_deletions():
    events = [event("1", "application.user_membership.add", ("AppInstance", "0oa1"), ("User", "00u1")),
              event("2", "group.application_assignment.add", ("AppInstance", "0oa2"), ("UserGroup", "00g2")),
              event("3", "user.account.privilege.grant", ("User", "00u3")),
              event("4", "group.lifecycle.delete", ("UserGroup", "00g4")),
              event("5", "user.lifecycle.delete.completed", ("User", "00u5"))]
    plan = build_plan(events, SyncOptions(sync_custom_roles=True), NOW - timedelta(minutes=2), NOW)
    assert isinstance(plan, Plan)
    streams = {(s.kind, s.parent) for s in plan.streams}
    assert {("app-users", "app:0oa1"), ("app-groups", "app:0oa2"), ("user-roles", "user:00u3")} <= streams
    assert ("app-groups", "app:0oa1") not in streams  # a user assignment does not touch the app's groups
    assert plan.deleted == ["group:00g4", "user:00u5"]
    groups = next(s for s in plan.streams if s.kind == "groups")
    assert "00g2" in groups.url and "BUILT_IN" in groups.url  # app count of 00g2; Everyone after a delete
    assert "resource-sets" not in plan.closed_kinds  # a privilege change re-lists the bindings
    assert set(plan.partial_kinds) == {"users", "groups", "service-apps"}
    # No event is needed for a service app's roles: every run reads the OIDC apps and opens their role lists.
    assert ("service-apps", None) in streams and "service-apps" not in plan.closed_kinds


def linked(*bodies: list, limit: int = 1) -> tuple[list[str], callable]:
    """Stub pages linked as Okta links them (page i's next link is `...after=i+1&limit=N`, echoing the
    page size); records the URLs read."""
    asked: list[str] = []
    bodies = [*bodies, []]

    def get(url: str) -> Page:
        asked.append(url)
        if "after=bad" in url:
            raise OktaInvalidRequest("400 E0000001 invalid after", status=400)
        i = int(url.split("after=", 1)[1].split("&")[0]) if "after=" in url else 0
        return Page(bodies[i] if i < len(bodies) else [],
                    f"/api/v1/logs?after={min(i + 1, len(bodies) - 1)}&limit={limit}")
    return asked, get


def test_a_saved_after_link_is_where_the_read_resumes():
    asked, get = linked([event("a", "x")], [event("b", "x")])
    got = read_log(get, NOW - timedelta(minutes=5), seen={"a"}, after="/api/v1/logs?after=0")
    assert asked[0] == "/api/v1/logs?after=0" and "since=" not in "".join(asked)
    assert got.from_after and [e["uuid"] for e in got.events] == ["b"]


def test_a_refused_after_link_falls_back_to_since():
    asked, get = linked([event("a", "x")])
    got = read_log(get, NOW - timedelta(minutes=5), after="/api/v1/logs?after=bad")
    assert asked[0].endswith("after=bad") and "since=" in asked[1]
    assert not got.from_after and [e["uuid"] for e in got.events] == ["a"]


def test_the_resume_link_keeps_the_overlap_window_of_events():
    """The next run resumes at the first page holding an event of the last two minutes, and knows
    the uuids it will read again from there (so late or duplicated events are read, not re-applied)."""
    old, recent = NOW - timedelta(minutes=10), NOW - timedelta(seconds=30)
    _asked, get = linked([event("a", "x", at=old)], [event("b", "x", at=old), event("c", "x", at=recent)],
                         [event("d", "x", at=recent)])
    got = read_log(get, NOW - timedelta(minutes=15), overlap=timedelta(minutes=2))
    assert got.resume == "/api/v1/logs?after=1&limit=1" and got.resume_ids == ["b", "c", "d"]
    again = read_log(get, NOW, seen=set(got.resume_ids), after=got.resume)
    assert again.events == [] and again.from_after


def holding(sizes: dict[str, int], held: dict[str, list[str]]) -> callable:
    """A view look-up: principal -> the app-users containers holding it, each with its grant count."""
    def lookup(pairs):
        return {(p, k): [(c, sizes[c]) for c in held.get(p, [])] for p, k in pairs if held.get(p)}
    return lookup


def test_a_user_status_change_reads_that_users_row_of_each_app_holding_it():
    events = [event("1", "user.lifecycle.suspend", ("User", "00u1"))]
    lookup = holding({"app-users:app:0oaA": 10_000, "app-users:app:0oaB": 3},
                     {"user:00u1": ["app-users:app:0oaA", "app-users:app:0oaB"]})
    plan = build_plan(events, SyncOptions(), NOW - timedelta(minutes=2), NOW, lookup)
    rows = sorted((s.kind, s.url, s.meta_value("container")) for s in plan.streams if s.kind.startswith("app-user"))
    assert rows == [("app-user", "/api/v1/apps/0oaA/users/00u1", "app-users:app:0oaA"),
                    ("app-user", "/api/v1/apps/0oaB/users/00u1", "app-users:app:0oaB")]
    assert plan.row_kinds == ["app-user"]


def test_more_changed_users_of_an_app_than_its_list_has_pages_relist_it_whole():
    """Row reads cost one request each: past the whole list's page count (3 pages of 500 for 1,200
    users) the list is cheaper, and with its pages sequential and the rows parallel, no slower."""
    users = [f"00u{i}" for i in range(4)]
    events = [event(str(i), "user.lifecycle.deactivate", ("User", u)) for i, u in enumerate(users)]
    for changed, kinds in ((3, {"app-user"}), (4, {"app-users"})):
        lookup = holding({"app-users:app:0oaA": 1200}, {f"user:{u}": ["app-users:app:0oaA"] for u in users[:changed]})
        plan = build_plan(events[:changed], SyncOptions(), NOW - timedelta(minutes=2), NOW, lookup)
        assert {s.kind for s in plan.streams if s.kind.startswith("app-user")} == kinds


def test_no_row_read_where_the_app_users_are_relisted_whole():
    events = [event("1", "user.lifecycle.suspend", ("User", "00u1")),
              event("2", "application.user_membership.add", ("AppInstance", "0oaA"), ("User", "00u2"))]
    lookup = holding({"app-users:app:0oaA": 10_000}, {"user:00u1": ["app-users:app:0oaA"]})
    plan = build_plan(events, SyncOptions(), NOW - timedelta(minutes=2), NOW, lookup)
    assert [(s.kind, s.parent) for s in plan.streams if s.kind.startswith("app-user")] == [("app-users", "app:0oaA")]


def test_a_membership_event_opens_that_groups_member_list_with_the_first_lists():
    """Without waiting for the filtered groups list to return the group: only groups of the view,
    not Everyone (derived), not a group deleted since, the largest first."""
    from worker.connector.incremental import TYPES
    from worker.connector.types.base import View

    events = [event("1", "group.user_membership.add", ("User", "00u1"), ("UserGroup", "00gSmall")),
              event("2", "group.user_membership.remove", ("User", "00u2"), ("UserGroup", "00gBig")),
              event("3", "group.user_membership.add", ("User", "00u3"), ("UserGroup", "00gEveryone")),
              event("4", "group.user_membership.add", ("User", "00u4"), ("UserGroup", "00gNew")),
              event("5", "group.user_membership.add", ("User", "00u5"), ("UserGroup", "00gGone")),
              event("6", "group.lifecycle.delete", ("UserGroup", "00gGone"))]
    stored = {"type": {"group:00gSmall": "OKTA_GROUP", "group:00gBig": "APP_GROUP",
                       "group:00gEveryone": "BUILT_IN", "group:00gGone": "OKTA_GROUP"},
              "users_count": {"group:00gSmall": "3", "group:00gBig": "6000", "group:00gEveryone": "20000"}}
    view = View(values=lambda keys, field: {k: v for k, v in stored[field].items() if k in keys})
    plan = build_plan(events, SyncOptions(), NOW - timedelta(minutes=2), NOW)
    specs = plan.streams
    for t in TYPES.values():
        specs, _validated = t.changes.validate(specs, view)
    members = [s for s in specs if s.kind == "group-members"]
    assert [(s.parent, s.url) for s in members] == [
        ("group:00gBig", "/api/v1/groups/00gBig/users?limit=1000"),
        ("group:00gSmall", "/api/v1/groups/00gSmall/users?limit=1000")]
    assert plan.deleted == ["group:00gGone"]


def test_a_deleted_users_groups_are_relisted_with_the_first_lists():
    from worker.connector.incremental import TYPES
    from worker.connector.types.base import View

    events = [event("1", "user.lifecycle.delete.completed", ("User", "00u1"))]
    lookup = holding({"group-members:group:00gA": 6000, "group-members:group:00gAll": 20000},
                     {"user:00u1": ["group-members:group:00gA", "group-members:group:00gAll"]})
    stored = {"type": {"group:00gA": "OKTA_GROUP", "group:00gAll": "BUILT_IN"}, "users_count": {}}
    view = View(values=lambda keys, field: {k: v for k, v in stored[field].items() if k in keys})
    plan = build_plan(events, SyncOptions(), NOW - timedelta(minutes=2), NOW, lookup)
    specs = plan.streams
    for t in TYPES.values():
        specs, _validated = t.changes.validate(specs, view)
    assert [s.parent for s in specs if s.kind == "group-members"] == ["group:00gA"]
    assert plan.deleted == ["user:00u1"]
