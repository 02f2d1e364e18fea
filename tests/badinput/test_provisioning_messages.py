"""Malformed provisioning messages pushed as raw Celery messages (LPUSH of the documented JSON)
onto a real provisioning worker: every one gets a recorded failure with its reason (a failed row,
or the rejected list when no row can hold it, even for messages that are not provisioning tasks at
all), no process crashes, and the next valid request runs."""

from __future__ import annotations

import base64
import json
import time

import redis

from tests.support.provisioning import make_store, raw_message, sim_args, wait_done

SUBMIT = "oktasync.provision.submit"


def submit(**kw) -> str:
    return raw_message(SUBMIT, kw)


def test_malformed_messages_are_recorded_and_the_worker_carries_on(oktasim, pg_url, redis_url, secret_key,
                                                                 workers):
    sim = oktasim(sim_args())
    store = make_store(pg_url, sim.url)
    w = workers(concurrency=1)
    st = sim.state()
    g = next(x for x in st["groups"] if x["type"] == "OKTA_GROUP")
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in g["members"])
    ent = f"group:{g['id']}:member"
    # key -> expected words in the failed row's error
    failed_rows = {
        "kind-int": (dict(kind=123, payload={"entitlement": ent, "principal": f"user:{uid}"}), "kind"),
        "kind-unknown": (dict(kind="promote", payload={}), "kind"),
        "payload-str": (dict(kind="grant", payload="group:00g1:member"), "payload"),
        "payload-list": (dict(kind="grant", payload=[ent]), "payload"),
        "payload-missing": (dict(kind="grant"), "payload"),
        "no-principal": (dict(kind="grant", payload={"entitlement": ent}), "principal"),
        "ent-int": (dict(kind="grant", payload={"entitlement": 42, "principal": f"user:{uid}"}), "entitlement"),
        "ent-short": (dict(kind="grant", payload={"entitlement": "group:", "principal": f"user:{uid}"}),
                      "entitlement"),
        "ent-slug": (dict(kind="grant", payload={"entitlement": f"group:{g['id']}:owner", "principal": f"user:{uid}"}),
                     "slug"),
        "ent-type": (dict(kind="grant", payload={"entitlement": "planet:p1:member", "principal": f"user:{uid}"}),
                     "planet"),
        "principal-type": (dict(kind="grant", payload={"entitlement": ent, "principal": "robot:r1"}), "robot"),
        "principal-not-taken": (dict(kind="grant", payload={"entitlement": ent, "principal": f"group:{g['id']}"}),
                                "cannot be granted to a group"),
        "grant-id-bad": (dict(kind="revoke", payload={"grant": "group:00g1:member"}), "grant"),
        "unknown-ent": (dict(kind="grant", payload={"entitlement": "group:00gNOSUCHGROUP0001:member",
                                                    "principal": f"user:{uid}"}), "not found"),
        "action-unknown": (dict(kind="action", payload={"action": "rm_rf", "args": {}}), "rm_rf"),
        "huge-id": (dict(kind="grant", payload={"entitlement": "group:" + "A" * 2_000_000 + ":member",
                                                "principal": f"user:{uid}"}), "characters long"),
        "huge-args": (dict(kind="action", payload={"action": "create", "args": {"name": "x" * 1_000_000}}),
                      "name"),
    }
    r = redis.Redis.from_url(redis_url)
    for key, (kw, _) in failed_rows.items():
        r.lpush("provisioning", submit(tenant="super", idempotency_key=key, **kw))
    # No row can hold these: the rejected list keeps them.
    r.lpush("provisioning", submit(tenant="no-such-tenant", kind="grant", idempotency_key="lost-1", payload={}))
    r.lpush("provisioning", submit(tenant=["super"], kind="grant", idempotency_key="lost-2", payload={}))
    r.lpush("provisioning", submit(kind="grant", idempotency_key="lost-3", payload={}))
    # Not even a task: garbage body, wrong argument types to execute, an unknown task name.
    junk = json.loads(raw_message(SUBMIT, {}))
    junk["body"] = base64.b64encode(b"{not json").decode()
    r.lpush("provisioning", json.dumps(junk))
    r.lpush("provisioning", raw_message("oktasync.provision.execute", {"request_id": "abc"}))
    r.lpush("provisioning", raw_message("oktasync.provision.execute", {"request_id": 987654321}))
    r.lpush("provisioning", raw_message("oktasync.provision.no_such_task", {}))
    r.lpush("provisioning", "this is not a Celery message")
    # Unknown extra keys are ignored: only the canonical payload is stored, not the 2 MB.
    r.lpush("provisioning", submit(tenant="super", kind="revoke", idempotency_key="huge-extra",
                                   payload={"entitlement": ent, "principal": "user:00uNOSUCHUSER0001",
                                            "x": "A" * 2_000_000}))
    # Then a valid request: it must run.
    r.lpush("provisioning", submit(tenant="super", kind="grant", idempotency_key="valid-after",
                                   payload={"entitlement": ent, "principal": f"user:{uid}"}))

    from worker import client

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ok = client.status("super", "valid-after", database_url=pg_url)
        if ok and ok.done:
            break
        time.sleep(0.2)
    row = wait_done(store, ok.id)
    assert row.state == "succeeded", row.error
    assert uid in next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]
    for key, (_, words) in failed_rows.items():
        ref = client.status("super", key, database_url=pg_url)
        assert ref is not None, f"{key}: no request row"
        done = wait_done(store, ref.id)
        assert done.state == "failed", (key, done.state, done.error)
        assert done.error and words in done.error, (key, done.error)
        assert len(done.error) < 2000, (key, len(done.error))  # the huge payload is not echoed back
    extra = wait_done(store, client.status("super", "huge-extra", database_url=pg_url).id)
    assert extra.state in ("succeeded", "failed") and "x" not in extra.payload, extra.payload.keys()
    rejected = [json.loads(x) for x in r.lrange("oktasync:provision:rejected", 0, -1)]
    assert {x.get("idempotency_key") for x in rejected} >= {"lost-1", "lost-2", "lost-3"}, rejected
    assert all(x["error"] for x in rejected)
    # Messages that are not provisioning tasks at all are kept too, with why and what they held.
    malformed = {x["error"]: x for x in rejected if "malformed message" in x["error"]}
    expected = {"not JSON": "this is not a Celery message",
                "unknown task 'oktasync.provision.no_such_task'": "no_such_task",
                "body of task oktasync.provision.submit is not base64 JSON": "{not json"}
    for why, held in expected.items():
        entry = next((x for e, x in malformed.items() if why in e), None)
        assert entry is not None, (why, list(malformed))
        shown = entry["message"] if held != "{not json" else base64.b64decode(json.loads(entry["message"])["body"]).decode()
        assert held in shown and entry["message_chars"] >= len(held), entry
    assert w.proc.poll() is None, "the worker died"
    log = w.log.read_text(errors="replace")
    assert "malformed message on queue 'provisioning'" in log
    assert "this is not a Celery message" not in log, "the log must not echo what was pushed (it may hold a secret)"
