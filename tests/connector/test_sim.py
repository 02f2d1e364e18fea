"""The connector over real HTTP against oktasim, compared with the simulator's own state."""

from __future__ import annotations

import httpx
import pytest

from tests.support.connector import SIZES, TOKENS
from tests.support.expected import expected, observed
from tests.support.sim import Sim
from worker.connector import SyncOptions, initial_streams
from worker.connector.crawl import crawl
from worker.okta.auth import SSWSAuth
from worker.okta.client import OktaClient


@pytest.fixture
def sim(shared_sim):
    return shared_sim


@pytest.fixture
def state(shared_state):
    return shared_state


def client_for(sim: Sim, level: str = "super-admin") -> OktaClient:
    return OktaClient(sim.url, SSWSAuth(TOKENS[level]), max_retries=2)


def run(client: OktaClient, options: SyncOptions):
    try:
        return observed(list(crawl(client, options)))
    finally:
        client.close()


def assert_same(got, want) -> None:
    for what in ("resources", "entitlements", "grants"):
        g, w = getattr(got, what), getattr(want, what)
        assert g == w, f"{what}: missing {sorted(w - g)[:5]} extra {sorted(g - w)[:5]} ({len(g)} vs {len(w)})"
    assert got.app_scopes == want.app_scopes


OPTION_SETS = {
    "defaults": {},
    "custom-roles+secrets": {"sync_custom_roles": True, "sync_secrets": True},
    "inactive-apps": {"sync_inactive_apps": True},
    "skip-app-groups+filter": {"skip_app_groups": True, "filter_email_domains": ("acme.io", "example.com")},
    "everything": {"skip_app_groups": True, "sync_inactive_apps": True, "sync_secrets": True,
                   "sync_custom_roles": True, "filter_email_domains": ("corp.example.com", "ACME.io")},
}


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_sync_matches_org(sim, state, name):
    opts = OPTION_SETS[name]
    got, warnings, objects = run(client_for(sim), SyncOptions(**opts))
    want = expected(state, **{**opts, "filter_email_domains": tuple(
        d.lower() for d in opts.get("filter_email_domains", ()))})
    assert_same(got, want)
    assert warnings == []
    # Fields of every resource against the state.
    for u in state["users"]:
        res = objects["resources"].get(f"user:{u['id']}")
        if res is not None:
            assert res.profile["okta_status"] == u["status"]
            assert res.profile["login"] == u["profile"]["login"]
    for g in state["groups"]:
        res = objects["resources"].get(f"group:{g['id']}")
        if res is not None:
            assert (res.display_name, res.profile["type"], res.profile["immutable"]) == (
                g["profile"]["name"], g["type"], g["type"] == "BUILT_IN")
            assert res.profile["users_count"] == len(g["members"])
    for a in state["apps"]:
        res = objects["resources"].get(f"app:{a['id']}")
        if res is not None:
            assert (res.display_name, res.profile["status"], res.profile["signOnMode"]) == (
                a["label"], a["status"], a["signOnMode"])
    for r in state["custom_roles"]:
        res = objects["resources"].get(f"custom-role:{r['id']}")
        if res is not None:  # the IAM-based standard roles (Workflows, ...) come here, as Okta lists them
            assert res.display_name == r["label"]
    # Scoped roles carry their targets; org-wide ones none.
    for ra in state["role_assignments"]:
        ptype = "app" if ra["principal_type"] == "client" else ra["principal_type"]
        g = objects["grants"].get(f"role:{ra['type']}:assigned:{ptype}:{ra['principal_id']}")
        if g is not None and ra.get("targets") is not None:
            want = {k: v for k, v in ra["targets"].items() if v}
            assert g.annotations.get("targets", {}) == want, (g.id, g.annotations)
    for t in state["api_tokens"]:
        res = objects["resources"].get(f"api-token:{t['id']}")
        if res is not None:
            assert res.parent == f"user:{t['userId']}" and res.profile["name"] == t["name"]


def test_org_exercises_every_case(state):
    """Guard: the generated org has what the comparisons above need to mean something."""
    types = {g["type"] for g in state["groups"]}
    assert {"OKTA_GROUP", "APP_GROUP", "BUILT_IN"} <= types
    assert {a["status"] for a in state["apps"]} == {"ACTIVE", "INACTIVE"}
    assert {au["scope"] for a in state["apps"] for au in a["users"]} == {"USER", "GROUP"}
    assert {ra["principal_type"] for ra in state["role_assignments"]} == {"user", "group", "client"}
    clients = [ra for ra in state["role_assignments"] if ra["principal_type"] == "client"]
    assert {"CUSTOM", "WORKFLOWS_ADMIN"} <= {ra["type"] for ra in clients}   # service apps hold custom roles too
    assert any(any(ra.get("targets", {}).values()) for ra in clients)      # and scoped ones
    targeted = [ra for ra in state["role_assignments"] if ra.get("targets")]   # the standard roles
    assert any(any(ra["targets"].values()) for ra in targeted)   # some scoped ...
    assert any(ra["type"] in ("USER_ADMIN", "HELP_DESK_ADMIN", "GROUP_MEMBERSHIP_ADMIN", "APP_ADMIN")
               and not any(ra["targets"].values()) for ra in targeted)   # ... and some could be, but are not
    assert any(b["members"] for rs in state["resource_sets"] for b in rs["bindings"])
    assert state["api_tokens"] and state["custom_roles"]
    labels = {r["label"] for r in state["custom_roles"]}
    assert {"Workflows Administrator", "Access Certifications Administrator",
            "Access Requests Administrator"} <= labels
    domains = {u["profile"]["email"].split("@")[1] for u in state["users"]}
    assert {"acme.io", "example.com", "corp.example.com"} <= domains


@pytest.mark.parametrize("level", ["read-only", "app-group-admin"])
def test_token_levels_skip_what_they_cannot_read(sim, state, level):
    opts = OPTION_SETS["everything"]
    got, warnings, _ = run(client_for(sim, level), SyncOptions(**opts))
    want = expected(state, **{**opts, "filter_email_domains": ("corp.example.com", "acme.io")},
                    can_read_tokens=False)
    assert_same(got, want)
    assert len(warnings) == 1 and "API tokens" in warnings[0] and "okta.apiTokens.read" in warnings[0]


def test_child_list_deleted_mid_sync_is_skipped(oktasim):
    s = oktasim([*SIZES, "--api-token", f"{TOKENS['super-admin']}=super-admin"])
    admin = httpx.Client(base_url=s.url, headers={"Authorization": f"SSWS {TOKENS['super-admin']}"})
    deleted = None
    results = []
    client = client_for(s)
    for result in crawl(client, SyncOptions()):
        results.append(result)
        if deleted is None:
            okta_groups = {r.key for r in result.resources if r.profile.get("type") == "OKTA_GROUP"}
            target = next((c for c in result.children
                           if c.kind == "group-members" and c.parent in okta_groups), None)
            if target is not None:
                deleted = target.parent.split(":", 1)[1]
                assert admin.delete(f"/api/v1/groups/{deleted}").status_code == 204
    client.close()
    admin.close()
    assert deleted is not None
    got, warnings, _ = observed(results)
    assert any(f"group:{deleted}" in w and "deleted" in w for w in warnings), warnings
    assert not any(g.startswith(f"group:{deleted}:member:") for g in got.grants)


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_request_count_is_one_per_needed_page(sim, state, name):
    """Every list fits one page at Okta's maxima here, so a sync makes exactly one request per list it
    needs: no member list for empty groups, role lists only for groups holding a role, the admin list
    once per run (not once per role), one role list per admin, one targets list per scopable role."""
    opts = OPTION_SETS[name]
    domains = opts.get("filter_email_domains", ())
    groups = [g for g in state["groups"] if not (opts.get("skip_app_groups") and g["type"] == "APP_GROUP")]
    apps = [a for a in state["apps"] if opts.get("sync_inactive_apps") or a["status"] == "ACTIVE"]
    role_groups = {ra["principal_id"] for ra in state["role_assignments"] if ra["principal_type"] == "group"}
    admins = {ra["principal_id"] for ra in state["role_assignments"] if ra["principal_type"] == "user"}
    for rs in state["resource_sets"]:
        for b in rs["bindings"]:
            role_groups |= {m["id"] for m in b["members"] if m["type"] == "group"}
            admins |= {m["id"] for m in b["members"] if m["type"] == "user"}
    want = 5  # users, groups, apps, role assignees, OIDC apps
    want += sum(1 for g in groups if g["members"]) + sum(1 for g in groups if g["id"] in role_groups)
    # two assignment lists per app, and one role list per service app (active or not)
    service = sum(1 for a in state["apps"] if a["application_type"] == "service")
    want += 2 * len(apps) + len(admins) + service
    # one targets list per assignment of a role Okta scopes (its first page holds up to 200 targets)
    want += sum(1 for ra in state["role_assignments"]
                if ra["type"] in ("USER_ADMIN", "HELP_DESK_ADMIN", "GROUP_MEMBERSHIP_ADMIN", "APP_ADMIN"))
    if opts.get("sync_custom_roles"):
        want += 2 + len(state["resource_sets"]) + sum(len(rs["bindings"]) for rs in state["resource_sets"])
    if opts.get("sync_secrets"):
        want += 1
    assert len(state["users"]) <= 200 and all(len(g["members"]) <= 1000 for g in groups)
    assert domains or want > 20
    sim.reset_stats()
    run(client_for(sim), SyncOptions(**opts))
    assert sim.stats()["requests_total"] == want


def test_multi_page_lists(oktasim):
    """400 users = two full pages at limit 200: every page is followed, nothing is warned about."""
    s = oktasim(["--users", "400", "--groups", "6", "--apps", "4", "--seed", "3", "--rate-limit-scale", "50",
                 "--api-token", f"{TOKENS['super-admin']}=super-admin"])
    opts = OPTION_SETS["everything"]
    got, warnings, _ = run(client_for(s), SyncOptions(**opts))
    want = expected(s.state(), **{**opts, "filter_email_domains": ("corp.example.com", "acme.io")})
    assert_same(got, want)
    assert warnings == []
    assert sum(1 for r in got.resources if r.startswith("user:")) > 100


def test_user_lists_ask_okta_to_omit_credentials(sim):
    from worker.connector.crawl import fetch_page

    client = client_for(sim)
    try:
        for spec in initial_streams(SyncOptions())[:1]:
            page = fetch_page(client, spec, spec.url)
            assert page.items and not any("credentials" in u for u in page.items)
        assert any("credentials" in u for u in client.get_page(spec.url).items)  # the header is what does it
    finally:
        client.close()
