"""The pure mapping on recorded real Okta bodies and on hand-made edge cases."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.recordings import bodies
from worker.connector import (
    Fail,
    InvalidOptions,
    PageResult,
    Retry,
    Skip,
    StreamSpec,
    SyncOptions,
    UnknownStream,
    email_allowed,
    handle_error,
    handle_page,
    initial_streams,
    static_resources,
)
from worker.connector.types import api_token, app, custom_role, group, resource_set, role, user
from worker.model import parse_entitlement_id, parse_grant_id
from worker.okta.errors import (
    OktaNotFound,
    OktaPermissionDenied,
    OktaTransientError,
    RateLimitWait,
    error_from_response,
)

OPTS = SyncOptions()
ALL = SyncOptions(sync_custom_roles=True, sync_secrets=True, sync_inactive_apps=True)


def check_ids(result: PageResult) -> None:
    """Every id the connector emits parses with the shared model."""
    for e in result.entitlements:
        assert parse_entitlement_id(e.id).id == e.id
    for g in result.grants:
        assert parse_grant_id(g.id).id == g.id


def test_recorded_users_pages():
    pages = bodies("GET", r"/api/v1/users")
    assert pages
    n = 0
    for page in pages:
        res = handle_page(StreamSpec(user.USERS, user.users_url()), page, OPTS)
        assert [r.id for r in res.resources] == [u["id"] for u in page]
        for r, u in zip(res.resources, page, strict=True):
            assert r.type == "user"
            assert r.profile["okta_status"] == u["status"]
            assert r.profile["status"] == {"ACTIVE": "enabled", "STAGED": "disabled", "SUSPENDED": "disabled",
                                           "DEPROVISIONED": "disabled", "PROVISIONED": "enabled",
                                           "LOCKED_OUT": "enabled", "RECOVERY": "enabled",
                                           "PASSWORD_EXPIRED": "enabled"}.get(u["status"], "unspecified")
            assert r.profile["login"] == u["profile"]["login"]
            assert r.profile["emails"][0] == {"address": u["profile"]["email"], "primary": True}
            assert r.profile["created"] == u["created"]
            assert (r.profile["status_changed"], r.profile["last_updated"], r.profile["password_changed"]) == (
                u["statusChanged"], u["lastUpdated"], u["passwordChanged"])
            assert r.profile["user_type_id"] == u["type"]["id"]
            assert "credentials" not in r.profile["okta_profile"]
            n += 1
    assert n > 10


def test_user_display_name_and_employee_ids():
    page = [{"id": "00u1", "status": "ACTIVE", "profile": {"firstName": "Ada", "login": "ada@x.io",
                                                          "employeeNumber": "E7", "email": "ada@x.io"}},
            {"id": "00u2", "status": "WEIRD", "profile": {"displayName": "Bob B", "login": "bob"}}]
    a, b = handle_page(StreamSpec(user.USERS, user.users_url()), page, OPTS).resources
    assert a.display_name == "Ada unknown" and a.profile["employee_ids"] == ["E7"]
    assert a.profile["login_aliases"] == ["ada"]
    assert b.display_name == "Bob B" and b.profile["status"] == "unspecified" and b.profile["emails"] == []


def test_reviewer_fields_and_skip_secondary_emails():
    page = [{"id": "00u1", "status": "ACTIVE", "statusChanged": "2024-01-02T00:00:00.000Z",
             "lastUpdated": "2024-03-04T00:00:00.000Z", "passwordChanged": None, "type": {"id": "oty1"},
             "profile": {"login": "ada@x.io", "email": "ada@x.io", "secondEmail": "ada@acme.com",
                         "userType": "Contractor", "manager": "Bob B", "managerId": "00u2"}}]
    spec = StreamSpec(user.USERS, user.users_url())
    full = handle_page(spec, page, OPTS).resources[0].profile
    assert (full["user_type"], full["user_type_id"], full["manager"], full["manager_id"]) == (
        "Contractor", "oty1", "Bob B", "00u2")
    assert full["status_changed"] == "2024-01-02T00:00:00.000Z" and full["password_changed"] is None
    assert full["emails"][1] == {"address": "ada@acme.com", "primary": False}
    # baton-okta: the secondary e-mail leaves the traits and is nulled in the profile, yet the
    # e-mail domain filter still lets the user in through it.
    opts = SyncOptions(skip_secondary_emails=True, filter_email_domains=("acme.com",))
    skipped = handle_page(spec, page, opts).resources[0].profile
    assert skipped["emails"] == [{"address": "ada@x.io", "primary": True}]
    assert skipped["okta_profile"]["secondEmail"] is None and "secondEmail" in skipped["okta_profile"]
    assert page[0]["profile"]["secondEmail"] == "ada@acme.com"  # the page itself is left alone


def test_empty_user_list_is_flagged():
    res = handle_page(StreamSpec(user.USERS, user.users_url()), [], OPTS)
    assert res.resources == [] and len(res.warnings) == 1 and "admin role" in res.warnings[0]
    # An empty later page (user count a multiple of the page size) is not suspicious.
    later = StreamSpec(user.USERS, "https://x.okta.com/api/v1/users?after=100u9&limit=200&search=status+pr")
    assert handle_page(later, [], OPTS).warnings == []


@pytest.mark.parametrize("profile,domains,ok", [
    ({"email": "a@acme.com"}, ("acme.com",), True),
    ({"email": "a@ACME.COM"}, ("acme.com",), True),
    ({"email": "a@sub.acme.com"}, ("acme.com",), False),
    ({"email": "a@notacme.com"}, ("acme.com",), False),
    ({"email": "a@acme.com.evil.io"}, ("acme.com",), False),
    ({"email": "a@x.io", "secondEmail": "a@acme.com"}, ("acme.com",), True),
    ({"email": "a@x.io", "login": "a@Acme.com"}, ("acme.com",), True),
    ({"email": "a@x.io", "login": "acme.com"}, ("acme.com",), False),
    ({}, ("acme.com",), False),
    ({}, (), True),
])
def test_email_filter(profile, domains, ok):
    assert email_allowed(profile, domains) is ok


def test_options_normalise_and_refuse_bad_input():
    o = SyncOptions(filter_email_domains=(" @Acme.COM", "acme.com", "x.io"))
    assert o.filter_email_domains == ("acme.com", "x.io")
    assert SyncOptions.from_dict(o.to_dict()) == o
    assert SyncOptions(filter_email_domains="a.io,b.io").filter_email_domains == ("a.io", "b.io")
    with pytest.raises(InvalidOptions, match="not a domain"):
        SyncOptions(filter_email_domains=("acme com",))
    with pytest.raises(InvalidOptions, match="unknown sync option"):
        SyncOptions.from_dict({"sync_everything": True})
    with pytest.raises(InvalidOptions, match="true or false"):
        SyncOptions(skip_app_groups="yes")


def test_fingerprint_ignores_options_at_their_default():
    import hashlib
    import json
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Later(SyncOptions):   # a release that adds an option
        some_new_flag: bool = False

    for opts in ({}, {"sync_custom_roles": True}, {"filter_email_domains": ("acme.com",), "skip_app_groups": True}):
        assert Later(**opts).fingerprint() == SyncOptions(**opts).fingerprint()
    assert Later(some_new_flag=True).fingerprint() != SyncOptions().fingerprint()
    assert SyncOptions(sync_secrets=True).fingerprint() != SyncOptions().fingerprint()
    assert not SyncOptions().matches(None)

    def full_hash(data: dict) -> str:   # how fingerprints were written before (every option hashed)
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    for opts in (SyncOptions(), SyncOptions(sync_custom_roles=True, filter_email_domains=("acme.com",))):
        before_skip = {k: v for k, v in opts.to_dict().items() if k != "skip_secondary_emails"}
        assert opts.matches(full_hash(opts.to_dict())) and opts.matches(full_hash(before_skip))
        assert opts.matches(opts.fingerprint())
    skipping = SyncOptions(skip_secondary_emails=True)
    assert not skipping.matches(full_hash({k: v for k, v in skipping.to_dict().items() if k != "skip_secondary_emails"}))
    assert not SyncOptions().matches(full_hash(SyncOptions(sync_secrets=True).to_dict()))


def test_filter_applies_to_users_and_group_members():
    o = SyncOptions(filter_email_domains=("acme.com",))
    users = [{"id": "00u1", "status": "ACTIVE", "profile": {"login": "a@acme.com", "email": "a@x.io"}},
             {"id": "00u2", "status": "ACTIVE", "profile": {"login": "b@x.io", "email": "b@x.io"}}]
    assert [r.id for r in handle_page(StreamSpec(user.USERS, user.users_url()), users, o).resources] == ["00u1"]
    res = handle_page(StreamSpec(group.GROUP_MEMBERS, "/x", "group:00g1"), users, o)
    assert [g.id for g in res.grants] == ["group:00g1:member:user:00u1"]


def test_recorded_groups_pages():
    pages = bodies("GET", r"/api/v1/groups")
    assert pages
    for page in pages:
        res = handle_page(StreamSpec(group.GROUPS, "/api/v1/groups"), page, OPTS)
        check_ids(res)
        assert [r.id for r in res.resources] == [g["id"] for g in page]
        for r, g in zip(res.resources, page, strict=True):
            assert r.display_name == g["profile"]["name"]
            assert r.profile["type"] == g["type"]
            assert r.profile["immutable"] is (g["type"] == "BUILT_IN")
        # No stats in these recordings -> members and roles of every group are fetched.
        assert sorted(c.url for c in res.children) == sorted(
            [f"/api/v1/groups/{g['id']}/users?limit=1000" for g in page]
            + [f"/api/v1/groups/{g['id']}/roles" for g in page])
        skip = handle_page(StreamSpec(group.GROUPS, "/"), page, SyncOptions(skip_app_groups=True))
        assert [r.id for r in skip.resources] == [g["id"] for g in page if g["type"] != "APP_GROUP"]


def test_group_stats_drive_children():
    page = [
        {"id": "00g0", "type": "OKTA_GROUP", "profile": {"name": "Empty"},
         "_embedded": {"stats": {"usersCount": 0, "appsCount": 2, "hasAdminPrivlege": False}}},
        {"id": "00g1", "type": "APP_GROUP", "profile": {"name": "Pushed", "description": "d"},
         "_embedded": {"stats": {"usersCount": 3, "appsCount": 0, "hasAdminPrivlege": True}}},
    ]
    res = handle_page(StreamSpec(group.GROUPS, "/"), page, OPTS)
    assert [(c.kind, c.parent) for c in res.children] == [(group.GROUP_MEMBERS, "group:00g1"), (role.GROUP_ROLES, "group:00g1")]
    assert res.resources[0].profile["users_count"] == 0 and res.resources[0].profile["apps_count"] == 2
    assert res.entitlements[1].id == "group:00g1:member"
    assert res.entitlements[1].display_name == "Pushed Group Member"
    assert handle_page(StreamSpec(group.GROUPS, "/"), page, SyncOptions(skip_app_groups=True)).children == []


def test_recorded_apps_pages():
    pages = [p for p in bodies("GET", r"/api/v1/apps") if isinstance(p, list)]
    assert pages
    for page in pages:
        res = handle_page(StreamSpec(app.APPS, "/"), page, ALL)
        check_ids(res)
        assert [r.id for r in res.resources] == [a["id"] for a in page]
        for r, a in zip(res.resources, page, strict=True):
            assert (r.display_name, r.profile["status"], r.profile["signOnMode"]) == (
                a["label"], a["status"], a["signOnMode"])
        active = handle_page(StreamSpec(app.APPS, "/"), page, OPTS)
        assert [r.id for r in active.resources] == [a["id"] for a in page if a["status"] == "ACTIVE"]
        assert len(active.children) == 2 * len(active.resources)


def test_recorded_app_assignments():
    users = bodies("GET", r"/api/v1/apps/[^/]+/users")
    groups = bodies("GET", r"/api/v1/apps/[^/]+/groups")
    spec = StreamSpec(app.APP_USERS, "/", "app:0oa1")
    for page in users:
        res = handle_page(spec, page, OPTS)
        assert [(g.id, g.annotations["scope"]) for g in res.grants] == [
            (f"app:0oa1:access:user:{u['id']}", u["scope"]) for u in page]
    n = 0
    for page in groups:
        res = handle_page(StreamSpec(app.APP_GROUPS, "/", "app:0oa1"), page, OPTS)
        assert [g.id for g in res.grants] == [f"app:0oa1:access:group:{g['id']}" for g in page]
        n += len(res.grants)
    assert n > 0


def test_recorded_role_assignments():
    for page in bodies("GET", r"/api/v1/groups/[^/]+/roles"):
        res = handle_page(StreamSpec(role.GROUP_ROLES, "/", "group:00g1"), page, OPTS)
        check_ids(res)
        assert {g.id for g in res.grants} == {f"role:{a['type']}:assigned:group:00g1" for a in page}
    pages = bodies("GET", r"/api/v1/users/[^/]+/roles")
    assert pages
    for page in pages:
        res = handle_page(StreamSpec(role.USER_ROLES, "/", "user:00u1"), page, OPTS)
        assert {g.id for g in res.grants} == {f"role:{a['type']}:assigned:user:00u1" for a in page}


def test_role_assignment_rules():
    page = [
        {"id": "a1", "type": "SUPER_ADMIN", "status": "ACTIVE", "assignmentType": "USER"},
        {"id": "a2", "type": "ORG_ADMIN", "status": "INACTIVE", "assignmentType": "USER"},
        {"id": "a3", "type": "APP_ADMIN", "status": "ACTIVE", "assignmentType": "GROUP"},  # inherited
        {"id": "a4", "type": "NEW_FANCY_ADMIN", "label": "Fancy", "status": "ACTIVE", "assignmentType": "USER"},
        {"id": "irb1", "type": "CUSTOM", "role": "cr0abc", "resource-set": "iam1", "status": "ACTIVE",
         "assignmentType": "USER"},
        {"id": "irb2", "type": "WORKFLOWS_ADMIN", "role": "cr0wf", "status": "ACTIVE", "assignmentType": "USER"},
        {"id": "bad", "status": "ACTIVE", "assignmentType": "USER"},
    ]
    spec = StreamSpec(role.USER_ROLES, "/", "user:00u9")
    plain = handle_page(spec, page, OPTS)
    # An IAM-based standard role is keyed on its type, whatever its `role` says, with or without custom roles.
    assert [g.id for g in plain.grants] == ["role:SUPER_ADMIN:assigned:user:00u9",
                                            "role:NEW_FANCY_ADMIN:assigned:user:00u9",
                                            "role:WORKFLOWS_ADMIN:assigned:user:00u9"]
    # The unknown standard type becomes a role resource with its entitlement, never dropped.
    assert [(r.key, r.display_name) for r in plain.resources] == [("role:NEW_FANCY_ADMIN", "Fancy")]
    assert [e.id for e in plain.entitlements] == ["role:NEW_FANCY_ADMIN:assigned"]
    assert len(plain.warnings) == 1 and "no type" in plain.warnings[0]
    custom = handle_page(spec, page, SyncOptions(sync_custom_roles=True))
    assert [g.id for g in custom.grants][2:] == ["custom-role:cr0abc:assigned:user:00u9",
                                                 "role:WORKFLOWS_ADMIN:assigned:user:00u9"]
    check_ids(custom)


def test_static_roles():
    res = static_resources(OPTS)
    assert len(res.resources) == 13 and {e.id for e in res.entitlements} >= {"role:SUPER_ADMIN:assigned"}
    assert {r.key: r.display_name for r in res.resources}["role:USER_ADMIN"] == "Group Administrator"


def test_assignees_open_one_role_list_per_user_and_follow_body_links():
    body = {"value": [{"id": "00u1", "orn": "orn:okta:x:users:00u1"}, {"id": "00u2"}],
            "_links": {"next": {"href": "https://x.okta.com/api/v1/iam/assignees/users?after=00u2&limit=1000"}}}
    res = handle_page(StreamSpec(role.ROLE_ASSIGNEES, "/"), body, OPTS)
    assert [(c.kind, c.url, c.parent) for c in res.children] == [
        (role.USER_ROLES, "/api/v1/users/00u1/roles", "user:00u1"), (role.USER_ROLES, "/api/v1/users/00u2/roles", "user:00u2")]
    assert res.next_url.endswith("after=00u2&limit=1000")


def test_custom_roles_resource_sets_bindings_members():
    roles = handle_page(StreamSpec(custom_role.CUSTOM_ROLES, "/"), {"roles": [{"id": "cr0a", "label": "Auditor"}]}, ALL)
    assert [e.id for e in roles.entitlements] == ["custom-role:cr0a:assigned"]
    assert roles.entitlements[0].display_name == "Auditor Role Member"
    for recorded in bodies("GET", r"/api/v1/iam/roles") + bodies("GET", r"/api/v1/iam/resource-sets"):
        kind = custom_role.CUSTOM_ROLES if "roles" in recorded else resource_set.RESOURCE_SETS
        assert handle_page(StreamSpec(kind, "/"), recorded, ALL).warnings == []
    sets = handle_page(StreamSpec(resource_set.RESOURCE_SETS, "/"),
                       {"resource-sets": [{"id": "iam1", "label": "Set one", "description": "d"}]}, ALL)
    child = sets.children[0]
    assert (child.kind, child.url, child.parent) == (resource_set.BINDINGS, "/api/v1/iam/resource-sets/iam1/bindings",
                                                     "resource-set:iam1")
    child = StreamSpec.from_dict(child.to_dict())  # survives the engine's JSON storage
    bindings = handle_page(child, {"roles": [{"id": "cr0a"}], "_links": {}}, ALL)
    check_ids(bindings)
    assert [(r.key, r.display_name) for r in bindings.resources] == [("resourceset-binding:iam1:cr0a", "Set one")]
    assert [g.id for g in bindings.grants] == ["resource-set:iam1:bindings:custom-role:cr0a"]
    mspec = bindings.children[0]
    assert mspec.url == "/api/v1/iam/resource-sets/iam1/bindings/cr0a/members"
    members = {"value": [
        {"id": "irb1", "_links": {"self": {"href": "https://x.okta.com/api/v1/users/00u1"}}},
        {"id": "irb2", "_links": {"self": {"href": "https://x.okta.com/api/v1/apps/0oa1"}}},  # none of them
        {"id": "irb3", "_links": {"self": {"href": "https://x.okta.com/api/v1/groups/00g1"}}},
        {"id": "irb4", "_links": {"member": {"href": "https://x.okta.com/oauth2/v1/clients/0oa2"}}},
    ]}
    res = handle_page(mspec, members, ALL)
    # baton-okta would have given irb2 the previous member's principal; here it is skipped with a warning.
    assert [g.id for g in res.grants] == ["resourceset-binding:iam1:cr0a:member:user:00u1",
                                          "resourceset-binding:iam1:cr0a:member:group:00g1",
                                          "resourceset-binding:iam1:cr0a:member:app:0oa2"]
    assert len(res.warnings) == 1 and "irb2" in res.warnings[0]
    check_ids(res)


def test_recorded_api_tokens_never_carry_values():
    pages = bodies("GET", r"/api/v1/api-tokens")
    assert pages
    for page in pages:
        res = handle_page(StreamSpec(api_token.API_TOKENS, "/"), page, ALL)
        assert [r.id for r in res.resources] == [t["id"] for t in page]
        for r, t in zip(res.resources, page, strict=True):
            assert r.parent == f"user:{t['userId']}" and r.display_name == t["name"]
            assert set(r.profile) == {"name", "user_id", "client_name", "created", "expires_at", "last_updated",
                                      "token_window"}
    secret = [{"id": "00T1", "name": "n", "userId": "00u1", "token": "00abcsecret", "value": "00abcsecret"}]
    assert "00abcsecret" not in repr(handle_page(StreamSpec(api_token.API_TOKENS, "/"), secret, ALL))


def test_initial_streams_follow_options():
    kinds = [sp.kind for sp in initial_streams(OPTS)]
    assert kinds == [user.USERS, group.GROUPS, app.APPS, role.ROLE_ASSIGNEES, role.SERVICE_APPS]
    assert [sp.kind for sp in initial_streams(ALL)][5:] == [custom_role.CUSTOM_ROLES, resource_set.RESOURCE_SETS, api_token.API_TOKENS]
    users = initial_streams(OPTS)[0]
    assert "search=status+pr" in users.url and "omitCredentials" in users.header_dict["Content-Type"]
    assert 'filter=status%20eq%20%22ACTIVE%22' in initial_streams(OPTS)[2].url
    assert "filter" not in initial_streams(ALL)[2].url


def test_errors():
    denied = error_from_response(403, {}, b'{"errorCode":"E0000006","errorSummary":"You do not have permission"}',
                                 method="GET", url="http://x/api/v1/groups/00g1/roles")
    assert isinstance(denied, OktaPermissionDenied)
    res = handle_error(StreamSpec(role.GROUP_ROLES, "/api/v1/groups/00g1/roles", "group:00g1"), denied, OPTS)
    assert isinstance(res, Skip) and "okta.roles.read" in res.warning and "E0000006" in res.warning
    # Same text for every group: the run shows one distinct warning.
    again = handle_error(StreamSpec(role.GROUP_ROLES, "/api/v1/groups/00g2/roles", "group:00g2"), denied, OPTS)
    assert again == res
    scope = error_from_response(403, {"WWW-Authenticate": 'Bearer error="insufficient_scope", '
                                      'error_description="no", scope="okta.apiTokens.read"'}, b"")
    res = handle_error(StreamSpec(api_token.API_TOKENS, "/api/v1/api-tokens"), scope, ALL)
    assert "okta.apiTokens.read" in res.warning
    gone = error_from_response(404, {}, b'{"errorCode":"E0000007","errorSummary":"Not found"}')
    assert isinstance(gone, OktaNotFound)
    assert isinstance(handle_error(StreamSpec(app.APP_USERS, "/", "app:0oa1"), gone, OPTS), Skip)
    # A top-level list that is not found, a 5xx, a malformed page: retried, counted against the page.
    for error in (gone, error_from_response(503, {}, b""), ValueError("bad page")):
        got = handle_error(StreamSpec(user.USERS, "/"), error, OPTS)
        assert isinstance(got, Retry) and got.counted and type(error).__name__ in got.reason
    assert isinstance(error_from_response(503, {}, b""), OktaTransientError)
    # Credentials refused: retrying cannot help.
    refused = error_from_response(401, {}, b'{"errorCode":"E0000011","errorSummary":"Invalid token provided"}')
    assert isinstance(handle_error(StreamSpec(user.USERS, "/"), refused, OPTS), Fail)
    # The limiter says wait: paced, not counted; a transient failure the client backs off from: counted.
    paced = RateLimitWait(1.5, "bucket empty")
    assert handle_error(StreamSpec(user.USERS, "/"), paced, OPTS) == Retry("bucket empty", 1.5, counted=False)
    backoff = RateLimitWait(2.0, "retry")
    backoff.__cause__ = error_from_response(503, {}, b"")
    got = handle_error(StreamSpec(user.USERS, "/"), backoff, OPTS)
    assert got.counted and got.after == 2.0


def test_bad_input():
    with pytest.raises(UnknownStream):
        handle_page(StreamSpec("nope", "/"), [], OPTS)
    res = handle_page(StreamSpec(group.GROUPS, "/"), [{"id": None}, "x", {"id": "00g1", "profile": {}}], OPTS)
    assert [r.id for r in res.resources] == ["00g1"] and len(res.warnings) == 2


def test_role_targets_into_the_grant_annotations():
    """A scoped role opens its targets list; the recorded group targets land in the grant's annotations."""
    page = [{"id": "KVJUKUS7IFCE2SKO", "type": "USER_ADMIN", "status": "ACTIVE", "assignmentType": "GROUP"},
            {"id": "IFIFAX2BIRGUSTQ", "type": "APP_ADMIN", "status": "ACTIVE", "assignmentType": "GROUP"},
            {"id": "KNKVARKSL5AUITKJJY", "type": "SUPER_ADMIN", "status": "ACTIVE", "assignmentType": "GROUP"}]
    res = handle_page(StreamSpec(role.GROUP_ROLES, "/", "group:00g1"), page, OPTS)
    assert [(c.kind, c.url, c.parent) for c in res.children] == [
        (role.ROLE_TARGETS, "/api/v1/groups/00g1/roles/KVJUKUS7IFCE2SKO/targets/groups?limit=200",
         "role:USER_ADMIN:assigned:group:00g1"),
        (role.ROLE_TARGETS, "/api/v1/groups/00g1/roles/IFIFAX2BIRGUSTQ/targets/catalog/apps?limit=200",
         "role:APP_ADMIN:assigned:group:00g1")]
    groups_spec, apps_spec = res.children
    recorded = bodies("GET", r"/api/v1/groups/[^/]+/roles/[^/]+/targets/groups")
    assert recorded
    for body in recorded:
        out = handle_page(groups_spec, body, OPTS)
        assert [(g.id, g.annotations) for g in out.grants] == [
            ("role:USER_ADMIN:assigned:group:00g1",
             {"id": "KVJUKUS7IFCE2SKO", "targets": {"groups": [t["id"] for t in body]}})]
    apps = [{"name": "salesforce", "displayName": "Salesforce.com"}, {"name": "box", "id": "0oa2"}]
    out = handle_page(apps_spec, apps, OPTS)
    assert out.grants[0].annotations["targets"] == {"apps": ["salesforce"], "app_instances": ["0oa2"]}
    assert handle_page(groups_spec, [], OPTS).grants == []   # org-wide: the roles page's grant stands
    later = handle_page(replace(groups_spec, url=groups_spec.url + "&after=x"), recorded[0], OPTS)
    assert later.grants == [] and "more than 200 targets" in later.warnings[0]


def _recorded_oidc_app() -> dict:
    """A recorded OIDC app (a native one, with a client_id of its own: not its app id)."""
    found = [b for b in bodies("GET", r"/api/v1/apps/[^/]+$") if isinstance(b, dict)
             and b.get("settings", {}).get("oauthClient", {}).get("application_type")]
    assert found
    return found[0]


def test_service_apps_open_one_role_list_each_by_client_id():
    native = _recorded_oidc_app()
    cid = native["credentials"]["oauthClient"]["client_id"]
    assert cid != native["id"]
    service = {**native, "id": "0oasvc1", "status": "INACTIVE",
               "settings": {**native["settings"], "oauthClient": {**native["settings"]["oauthClient"],
                                                                  "application_type": "service"}}}
    plain = {"id": "0oasvc2", "signOnMode": "OPENID_CONNECT", "status": "ACTIVE",
             "settings": {"oauthClient": {"application_type": "service"}}}   # no client_id: the app id
    res = handle_page(StreamSpec(role.SERVICE_APPS, role.SERVICE_APPS_URL), [native, service, plain, {"x": 1}], OPTS)
    # Inactive ones too: the store prunes the grants of an app that is not a resource of the run.
    assert [(c.kind, c.url, c.parent, c.meta_value("client", c.parent_id)) for c in res.children] == [
        (role.CLIENT_ROLES, f"/oauth2/v1/clients/{cid}/roles", "app:0oasvc1", cid),
        (role.CLIENT_ROLES, "/oauth2/v1/clients/0oasvc2/roles", "app:0oasvc2", "0oasvc2")]
    assert res.resources == [] and res.grants == [] and len(res.warnings) == 1
    assert 'filter=name%20eq%20%22oidc_client%22' in role.SERVICE_APPS_URL


def test_client_roles_are_grants_of_the_app():
    spec = StreamSpec.from_dict(role.client_roles_stream("0oasvc1", "myclient").to_dict())
    page = [
        {"id": "KNKVARKSL5AUITKJJY", "type": "READ_ONLY_ADMIN", "status": "ACTIVE", "assignmentType": "CLIENT",
         "_links": {"assignee": {"href": "https://x.okta.com/oauth2/v1/clients/myclient"}}},
        {"id": "KVJUKUS7IFCE2SKO", "type": "USER_ADMIN", "status": "ACTIVE", "assignmentType": "CLIENT"},
        {"id": "irb1", "type": "CUSTOM", "role": "cr0a", "resource-set": "iam1", "status": "ACTIVE",
         "assignmentType": "CLIENT"},
        {"id": "x", "type": "ORG_ADMIN", "status": "ACTIVE", "assignmentType": "USER"},   # not the client's own
    ]
    res = handle_page(spec, page, ALL)
    check_ids(res)
    assert [(g.id, g.annotations) for g in res.grants] == [
        ("role:READ_ONLY_ADMIN:assigned:app:0oasvc1", {"id": "KNKVARKSL5AUITKJJY"}),
        ("role:USER_ADMIN:assigned:app:0oasvc1", {"id": "KVJUKUS7IFCE2SKO"}),
        ("custom-role:cr0a:assigned:app:0oasvc1", {"id": "irb1", "resource-set": "iam1"})]
    # The scoped role's targets are read by client id and written into the app's role list.
    [targets] = res.children
    assert (targets.url, targets.parent, targets.meta_value("container")) == (
        "/oauth2/v1/clients/myclient/roles/KVJUKUS7IFCE2SKO/targets/groups?limit=200",
        "role:USER_ADMIN:assigned:app:0oasvc1", "client-roles:app:0oasvc1")
    out = handle_page(targets, [{"id": "00g1", "profile": {"name": "G"}}], ALL)
    assert [(g.id, g.annotations) for g in out.grants] == [
        ("role:USER_ADMIN:assigned:app:0oasvc1", {"id": "KVJUKUS7IFCE2SKO", "targets": {"groups": ["00g1"]}})]
