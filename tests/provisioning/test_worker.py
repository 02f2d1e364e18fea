"""Real provisioning workers (`celery -A worker worker -Q provisioning`) on Redis + PostgreSQL,
against oktasim: the Python API, the documented raw JSON message, the CLI, retries to dead, and a
kill -9 of the worker in the middle of a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import redis

from tests.support.paths import ROOT
from tests.support.provisioning import make_store, raw_message, sim_args, wait_done
from worker import client


def test_python_api_json_message_and_rejects(oktasim, pg_url, redis_url, secret_key, workers, celery_app):
    sim = oktasim(sim_args())
    store = make_store(pg_url, sim.url)
    workers()
    st = sim.state()
    g = next(x for x in st["groups"] if x["type"] == "OKTA_GROUP")
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in g["members"])
    ent = f"group:{g['id']}:member"

    ref = client.grant("super", ent, f"user:{uid}", "api-1", database_url=pg_url, app=celery_app)
    assert ref.state == "queued" and ref.created
    row = wait_done(store, ref.id)
    assert row.state == "succeeded", row.error
    assert uid in next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]
    assert f"{ent}:user:{uid}" in store.view()
    assert client.wait("super", "api-1", database_url=pg_url).state == "succeeded"
    again = client.grant("super", ent, f"user:{uid}", "api-1", database_url=pg_url, app=celery_app)
    assert again.id == ref.id and not again.created and again.state == "succeeded"

    # Any language: LPUSH the documented JSON to the `provisioning` list.
    r = redis.Redis.from_url(redis_url)
    r.lpush("provisioning", raw_message("oktasync.provision.submit", {
        "tenant": "super", "kind": "revoke", "idempotency_key": "json-1",
        "payload": {"grant": f"{ent}:user:{uid}"}}))
    r.lpush("provisioning", raw_message("oktasync.provision.submit", {
        "tenant": "super", "kind": "grant", "idempotency_key": "json-bad",
        "payload": {"entitlement": ent, "principal": "group:00gx"}}))
    r.lpush("provisioning", raw_message("oktasync.provision.submit", {
        "tenant": "no-such-tenant", "kind": "grant", "idempotency_key": "json-lost", "payload": {}}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ok = client.status("super", "json-1", database_url=pg_url)
        bad = client.status("super", "json-bad", database_url=pg_url)
        if ok and ok.done and bad and r.llen("oktasync:provision:rejected"):
            break
        time.sleep(0.2)
    assert ok.state == "succeeded", ok.error
    assert uid not in next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]
    assert bad.state == "failed" and "cannot be granted to a group" in bad.error
    (lost,) = [json.loads(x) for x in r.lrange("oktasync:provision:rejected", 0, -1)]
    assert lost["tenant"] == "no-such-tenant" and "unknown tenant" in lost["error"]

    # A request whose publish was lost (recorded, never sent): the reaper sends it again.
    from worker.store import provision_requests

    with store.sessions() as s:
        orphan = provision_requests.record(s, "super", "grant", {"entitlement": ent, "principal": f"user:{uid}"}, "orphan")
    celery_app.send_task("oktasync.provision.reap", kwargs={"older_than": 0}, queue="provisioning")
    assert wait_done(store, orphan.id).state == "succeeded"
    assert uid in next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]


def test_worker_retries_transient_errors_then_dead(oktasim, pg_url, secret_key, workers, celery_app):
    sim = oktasim(sim_args("--fault-rate", "1"))  # every API call answered 500, 503 or cut off mid-body
    store = make_store(pg_url, sim.url)
    workers()
    ref = client.grant("super", "role:USER_ADMIN:assigned", "user:00u1", "t-1", database_url=pg_url, app=celery_app)
    row = wait_done(store, ref.id)
    assert row.state == "dead" and "gave up after 3 transient failures" in row.error
    assert row.attempts == 3


def test_cli_grant_status_list_and_action(oktasim, pg_url, secret_key, workers, worker_env):
    sim = oktasim(sim_args())
    make_store(pg_url, sim.url)
    workers()
    st = sim.state()
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE")

    exe = os.path.join(os.path.dirname(sys.executable), "oktasync")

    def oktasync(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=120)

    done = oktasync("provision", "grant", "--tenant", "super", "--entitlement", "role:READ_ONLY_ADMIN:assigned",
                    "--principal", f"user:{uid}", "--idempotency-key", "cli-1", "--wait")
    assert done.returncode == 0, done.stderr
    assert "state=succeeded" in done.stdout and "granted" in done.stdout
    clash = oktasync("provision", "revoke", "--tenant", "super", "--entitlement", "role:READ_ONLY_ADMIN:assigned",
                     "--principal", f"user:{uid}", "--idempotency-key", "cli-1")
    assert clash.returncode == 2 and "different payload" in clash.stderr
    act = oktasync("action", "--tenant", "super", "disable_user", f"user_id={uid}", "--idempotency-key", "cli-2",
                   "--wait", "--json")
    assert act.returncode == 0, act.stderr
    assert json.loads(act.stdout)["state"] == "succeeded"
    status = oktasync("provision", "status", "cli-2", "--tenant", "super")
    assert status.returncode == 0 and "suspended" in status.stdout
    listing = oktasync("provision", "list", "--tenant", "super", "--state", "succeeded")
    assert "cli-1" in listing.stdout and "cli-2" in listing.stdout
    bad = oktasync("action", "--tenant", "super", "enable_user", "--idempotency-key", "cli-3", "--wait")
    assert bad.returncode == 1 and "missing required argument(s) user_id" in bad.stdout
    gid = next(x["id"] for x in st["groups"] if x["type"] == "OKTA_GROUP")
    deleted = oktasync("provision", "delete", "--tenant", "super", "--resource-type", "group", "--resource-id", gid,
                       "--wait")
    assert deleted.returncode == 0 and f"group {gid} deleted" in deleted.stdout
    assert gid not in {x["id"] for x in sim.state()["groups"]}
    unknown = oktasync("provision", "status", "x", "--tenant", "nobody")
    assert unknown.returncode == 2 and "unknown tenant" in unknown.stderr


@pytest.mark.slow
def test_kill9_mid_request_applies_it_once(oktasim, pg_url, secret_key, workers, celery_app):
    sim = oktasim(sim_args("--latency-ms", "700"))
    store = make_store(pg_url, sim.url)
    st = sim.state()
    members = [u["id"] for u in st["users"] if u["status"] == "ACTIVE"][:4]
    fast = {"OKTASYNC_VISIBILITY_TIMEOUT": "12"}  # the killed message comes back after 12 s
    first = workers(concurrency=1, **fast)
    ref = client.action("super", "create", {"name": "Killed Midway", "userMembers": members}, "kill-1",
                        database_url=pg_url, app=celery_app)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the group exists and its id is recorded; members not all added
        row = store.request(ref.id)
        if row.state == "running" and (row.result or {}).get("progress", {}).get("group_id"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"request never reached the checkpoint: {row.state} {row.result} {row.error}")
    first.kill9()
    groups = [x for x in sim.state()["groups"] if x["profile"]["name"] == "Killed Midway"]
    assert len(groups) == 1 and set(groups[0]["members"]) != set(members)  # really cut in the middle
    assert store.request(ref.id).state == "running"
    workers(concurrency=1, **fast)  # the message comes back after the visibility timeout
    row = wait_done(store, ref.id, timeout=90)
    assert row.state == "succeeded", row.error
    assert row.attempts == 2
    groups = [x for x in sim.state()["groups"] if x["profile"]["name"] == "Killed Midway"]
    assert len(groups) == 1 and set(groups[0]["members"]) == set(members)
    assert row.result["details"]["group_id"] == groups[0]["id"]
    assert {f"group:{groups[0]['id']}:member:user:{u}" for u in members} <= store.view()


def test_every_kind_and_token_level_through_real_workers(oktasim, pg_url, secret_key, workers, celery_app):
    sim = oktasim(sim_args("--rate-limit-scale", "4"))  # pacing is the bench's subject, not this test's
    store = make_store(pg_url, sim.url)
    workers(concurrency=3)
    st = sim.state()
    by_status = {}
    for u in st["users"]:
        by_status.setdefault(u["status"], []).append(u["id"])
    active = by_status["ACTIVE"]
    okta_groups = [g for g in st["groups"] if g["type"] == "OKTA_GROUP"]
    g1, g2, g3, g4 = okta_groups[:4]
    app = next(a for a in st["apps"] if a["status"] == "ACTIVE" and a["label"] != "Okta Admin Console")
    rs = st["resource_sets"][0]
    binding = f"resourceset-binding:{rs['id']}:{rs['bindings'][0]['role']}:member"
    outsider = next(u for u in active if u not in g1["members"] and u not in g4["members"]
                    and u not in {x["id"] for x in app["users"]})
    everyone = next(g for g in st["groups"] if g["type"] == "BUILT_IN")
    new_in_g2 = [u for u in active[8:] if u not in g2["members"]][:2]
    cases = [  # (tenant, kind, payload, expected state, check on the org afterwards or error text)
        ("super", "grant", {"entitlement": f"group:{g1['id']}:member", "principal": f"user:{outsider}"}, "succeeded",
         lambda s: outsider in next(g for g in s["groups"] if g["id"] == g1["id"])["members"]),
        ("super", "grant", {"entitlement": f"app:{app['id']}:access", "principal": f"user:{outsider}"}, "succeeded",
         lambda s: {"id": outsider, "scope": "USER"} in next(a for a in s["apps"] if a["id"] == app["id"])["users"]),
        ("super", "grant", {"entitlement": f"app:{app['id']}:access", "principal": f"group:{g2['id']}"}, "succeeded",
         lambda s: g2["id"] in next(a for a in s["apps"] if a["id"] == app["id"])["groups"]),
        ("super", "grant", {"entitlement": "role:ORG_ADMIN:assigned", "principal": f"user:{active[1]}"}, "succeeded",
         lambda s: any(r["principal_id"] == active[1] and r["type"] == "ORG_ADMIN" for r in s["role_assignments"])),
        ("super", "grant", {"entitlement": "role:ORG_ADMIN:assigned", "principal": f"group:{g3['id']}"}, "succeeded",
         lambda s: any(r["principal_id"] == g3["id"] and r["type"] == "ORG_ADMIN" for r in s["role_assignments"])),
        ("super", "grant", {"entitlement": binding, "principal": f"group:{g2['id']}"}, "succeeded",
         lambda s: {"type": "group", "id": g2["id"]} in next(r for r in s["resource_sets"] if r["id"] == rs["id"])
         ["bindings"][0]["members"]),
        ("super", "action", {"action": "enable_user", "args": {"user_id": by_status["STAGED"][0]}}, "succeeded",
         lambda s: next(u for u in s["users"] if u["id"] == by_status["STAGED"][0])["status"] != "STAGED"),
        ("super", "action", {"action": "disable_user", "args": {"user_id": active[2]}}, "succeeded",
         lambda s: next(u for u in s["users"] if u["id"] == active[2])["status"] == "SUSPENDED"),
        ("super", "action", {"action": "create", "args": {"name": "Matrix", "userMembers": active[3:5]}}, "succeeded",
         lambda s: any(g["profile"]["name"] == "Matrix" and set(g["members"]) == set(active[3:5]) for g in s["groups"])),
        ("super", "action", {"action": "modify_group", "args": {"group_id": g3["id"], "description": "new"}},
         "succeeded", lambda s: next(g for g in s["groups"] if g["id"] == g3["id"])["profile"]["description"] == "new"),
        ("super", "action", {"action": "create_account", "args": {"email": "m@example.com", "first_name": "M",
                                                                  "last_name": "X"}}, "succeeded",
         lambda s: any(u["profile"]["login"] == "m@example.com" for u in s["users"])),
        ("super", "action", {"action": "deactivate_user", "args": {"user_id": active[6]}}, "succeeded",
         lambda s: next(u for u in s["users"] if u["id"] == active[6])["status"] == "DEPROVISIONED"),
        ("super", "delete", {"resource_type": "user", "resource_id": active[7]}, "succeeded",
         lambda s: active[7] not in {u["id"] for u in s["users"]}),
        ("super", "delete", {"resource_type": "group", "resource_id": g4["id"]}, "succeeded",
         lambda s: g4["id"] not in {g["id"] for g in s["groups"]}),
        ("super", "delete", {"resource_type": "group", "resource_id": everyone["id"]}, "failed", "BUILT_IN"),
        ("super", "action", {"action": "enable_user", "args": {"user_id": by_status["DEPROVISIONED"][0]}}, "failed",
         "DEPROVISIONED"),
        ("aga", "grant", {"entitlement": f"group:{g2['id']}:member", "principal": f"user:{new_in_g2[0]}"}, "succeeded",
         lambda s: new_in_g2[0] in next(g for g in s["groups"] if g["id"] == g2["id"])["members"]),
        ("aga", "grant", {"entitlement": "role:USER_ADMIN:assigned", "principal": f"user:{active[8]}"}, "failed",
         "okta.roles.manage"),
        ("ro", "grant", {"entitlement": f"group:{g2['id']}:member", "principal": f"user:{new_in_g2[1]}"}, "failed",
         "okta.groups.manage"),
        ("super", "grant", {"entitlement": f"group:{g2['id']}:member", "principal": f"group:{g1['id']}"}, "failed",
         "invalid request"),
    ]
    refs = [client.submit(tenant, kind, payload, f"m-{i}", database_url=pg_url, app=celery_app)
            for i, (tenant, kind, payload, _, _) in enumerate(cases)]
    rows = [wait_done(store, ref.id, timeout=120) for ref in refs]
    state = sim.state()
    for (tenant, kind, payload, expected, check), row in zip(cases, rows, strict=True):
        assert row.state == expected, (tenant, kind, payload, row.state, row.error)
        if callable(check):
            assert check(state), (tenant, kind, payload, row.result)
        else:
            assert check in row.error, (tenant, kind, payload, row.error)
