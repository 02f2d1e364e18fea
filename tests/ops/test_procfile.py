"""The Procfile under honcho, end to end: worker, provisioner, dispatcher, beat, flower and metrics against a
real Redis, PostgreSQL and oktasim; a Beat-driven sync of two tenants (SSWS and OAuth+DPoP), two
provisioning requests, Flower, `oktasync health`, /metrics, the logs, and a clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from tests.support.metrics import parse
from tests.support.ops import env_file_from_example, processes_with_marker, run_cli
from tests.support.paths import BIN, ROOT
from tests.support.services import free_port
from tests.support.sim import SIM_TOKEN

pytestmark = pytest.mark.slow

CLIENT_ID = "0oaopstest0000000001"
KID = "kid-ops-1"
FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-" + uuid.uuid4().hex


def _wait(pred, timeout: float, what: str, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out ({timeout}s) waiting for {what}\n--- honcho log tail:\n"
                         + log_path.read_text(errors="replace")[-6000:])


def test_procfile_runs_everything(tmp_path, redis_url, pg_url, oktasim, rsa_key):
    private_pem, private_path, public_path = rsa_key
    sim = oktasim(["--users", "40", "--groups", "8", "--apps", "3", "--seed", "11", "--window-seconds", "5",
                   "--oauth-client-id", CLIENT_ID, "--oauth-public-key", str(public_path), "--oauth-key-id", KID,
                   "--oauth-require-dpop"])
    secret_key = run_cli(["keygen"], env={"PATH": str(BIN)}).stdout.strip()
    assert len(secret_key) == 44, secret_key
    flower_port, metrics_port = free_port(), free_port()
    marker = f"OKTASYNC_OPS_TEST_MARKER=ops-{uuid.uuid4().hex}"
    env_path = tmp_path / "env"
    settings = env_file_from_example(env_path, {
        "OKTASYNC_BROKER_URL": redis_url, "OKTASYNC_REDIS_URL": redis_url, "OKTASYNC_DATABASE_URL": pg_url,
        "OKTASYNC_SECRET_KEY": secret_key, "OKTASYNC_DISPATCH_INTERVAL": "1", "OKTASYNC_VISIBILITY_TIMEOUT": "60",
        "OKTASYNC_WORKER_CONCURRENCY": "2", "OKTASYNC_PROVISIONER_CONCURRENCY": "1",
        "OKTASYNC_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"), "OKTASYNC_METRICS_PORT": str(metrics_port),
        "OKTASYNC_LOG_FORMAT": "json", "FLOWER_PORT": str(flower_port),
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
    })
    with env_path.open("a") as f:
        f.write(marker + "\n")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", **settings}
    assert run_cli(["db", "upgrade"], env).returncode == 0

    log_path = tmp_path / "honcho.log"
    log = log_path.open("w")
    honcho = subprocess.Popen([str(BIN / "honcho"), "start", "-f", str(ROOT / "Procfile"), "-e", str(env_path),
                               "-d", str(ROOT)], env={**env, "PYTHONUNBUFFERED": "1"}, cwd=str(ROOT),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: run_cli(["health", "--timeout", "2"], env).returncode == 0, 45, "oktasync health OK", log_path)

        # Two tenants, added with the CLI; Beat's dispatcher starts their first syncs.
        add = run_cli(["tenant", "add", "ssws", "--domain", sim.url, "--interval", "5"],
                      {**env, "OKTASYNC_API_TOKEN": SIM_TOKEN})
        assert add.returncode == 0, add.stderr
        add = run_cli(["tenant", "add", "oauth", "--domain", sim.url, "--interval", "5",
                       "--okta-client-id", CLIENT_ID, "--okta-private-key", f"@{private_path}",
                       "--okta-private-key-id", KID], env)
        assert add.returncode == 0, add.stderr

        from worker.store.db import make_engine, make_session_factory
        from worker.store.tables import SyncRun, Tenant

        engine = make_engine(pg_url)
        sessions = make_session_factory(engine)

        def synced() -> bool:
            with sessions() as s:
                rows = s.execute(sa.select(Tenant.name, SyncRun.state).join(SyncRun, SyncRun.tenant_id == Tenant.id)
                                 ).all()
            failed = [r for r in rows if r[1] == "failed"]
            assert not failed, failed
            return {n for n, st in rows if st == "succeeded"} == {"ssws", "oauth"}

        _wait(synced, 60, "a Beat-driven sync of both tenants to succeed", log_path)

        # Provisioning: a group membership for each tenant (SSWS, and OAuth with DPoP).
        st = sim.state()
        group = next(g for g in st["groups"] if g["type"] == "OKTA_GROUP")
        users = [u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in group["members"]][:2]
        for tenant, uid in zip(("ssws", "oauth"), users, strict=True):
            res = run_cli(["provision", "grant", "--tenant", tenant, "--entitlement", f"group:{group['id']}:member",
                           "--principal", f"user:{uid}", "--idempotency-key", f"ops-{tenant}", "--wait",
                           "--timeout", "40", "--json"], env, timeout=60)
            assert res.returncode == 0, (res.stdout, res.stderr)
            assert json.loads(res.stdout)["state"] == "succeeded", res.stdout
        members = next(g for g in sim.state()["groups"] if g["id"] == group["id"])["members"]
        assert set(users) <= set(members)

        # Flower: authentication required, tasks visible by name with id arguments.
        flower = f"http://127.0.0.1:{flower_port}"
        assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
        assert httpx.get(f"{flower}/api/workers", auth=(FLOWER_USER, "wrong-password"), timeout=10).status_code == 401
        workers = httpx.get(f"{flower}/api/workers", params={"refresh": "1"}, auth=(FLOWER_USER, FLOWER_PASSWORD),
                            timeout=15)
        assert workers.status_code == 200
        assert any(w.startswith("sync@") for w in workers.json()), workers.json().keys()
        assert any(w.startswith("provisioning@") for w in workers.json()), workers.json().keys()
        assert any(w.startswith("dispatch@") for w in workers.json()), workers.json().keys()
        tasks = httpx.get(f"{flower}/api/tasks", params={"limit": 2000}, auth=(FLOWER_USER, FLOWER_PASSWORD),
                          timeout=10).json()
        by_name: dict[str, list] = {}
        for t in tasks.values():
            by_name.setdefault(t["name"], []).append(t)
        for name in ("oktasync.sync.start", "oktasync.sync.page", "oktasync.sync.finalize",
                     "oktasync.sync.dispatch", "oktasync.provision.execute"):
            assert name in by_name, sorted(by_name)
        page = by_name["oktasync.sync.page"][0]
        assert page["args"].startswith("[") and page["args"].split(",")[0].strip("[ ").isdigit(), page["args"]
        execute = by_name["oktasync.provision.execute"][0]
        assert execute["args"].strip("[]() ,").isdigit(), execute["args"]
        dumped = json.dumps(tasks)
        for secret in (SIM_TOKEN, secret_key, "PRIVATE KEY", private_pem.splitlines()[1], "SSWS", "Bearer", "DPoP "):
            assert secret not in dumped, f"{secret[:12]}... visible in Flower"
        assert httpx.get(f"{flower}/healthcheck", timeout=10).status_code == 200  # compose's healthcheck
        fmetrics = httpx.get(f"{flower}/metrics", timeout=10)
        assert fmetrics.status_code == 200 and "flower_events_total" in fmetrics.text

        # Our metrics.
        ours = parse(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text)
        for tenant in ("ssws", "oauth"):
            assert ours[("oktasync_sync_runs", (("state", "succeeded"), ("tenant", tenant)))] >= 1
            assert ours[("oktasync_sync_pages", (("run_state", "succeeded"), ("tenant", tenant)))] > 0
            assert ours[("oktasync_provisioning_requests",
                         (("kind", "grant"), ("state", "succeeded"), ("tenant", tenant)))] == 1
        assert ("oktasync_queue_messages", (("queue", "provisioning"),)) in ours
        assert all(ours[("oktasync_metrics_source_up", (("source", s),))] == 1 for s in ("database", "broker", "redis"))
        engine.dispose()
    finally:
        honcho.send_signal(signal.SIGTERM)
        try:
            rc = honcho.wait(40)
        except subprocess.TimeoutExpired:
            honcho.kill()
            rc = None
        log.close()
    text = log_path.read_text(errors="replace")
    assert rc is not None, "honcho did not stop within 40 s of SIGTERM"
    tag = marker.split("=", 1)[1]
    deadline = time.monotonic() + 10
    while processes_with_marker(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_with_marker(tag), f"left running: {processes_with_marker(tag)}"
    for name in ("worker", "provisioner", "dispatcher", "beat", "flower", "metrics"):
        assert f"{name}.1 stopped" in text, name
    assert "Traceback" not in text, text[text.index("Traceback") - 2000:][:5000]

    # Logs: no secret, and one JSON line per task with the ids it is about.
    for secret in (SIM_TOKEN, secret_key, FLOWER_PASSWORD, *private_pem.strip().splitlines()[1:-1]):
        assert secret not in text, f"a secret ({secret[:10]}...) is in the logs"
    task_lines = []
    for line in text.splitlines():
        _, sep, rest = line.partition("| ")
        if sep and rest.startswith("{"):
            record = json.loads(rest)
            if record.get("logger") == "oktasync.task":
                task_lines.append(record)
    pages = [r for r in task_lines if r["task"] == "oktasync.sync.page"]
    assert pages and all(r["task_state"] == "SUCCESS" for r in pages), pages[:3]
    assert all(isinstance(r.get(k), int) for r in pages for k in ("tenant_id", "run_id", "stream_id")), pages[:3]
    executes = [r for r in task_lines if r["task"] == "oktasync.provision.execute"]
    assert executes and all(isinstance(r.get("request_id"), int) and isinstance(r.get("tenant_id"), int)
                            for r in executes), executes
    # One line per task run: each page task id appears once.
    ids = [r["task_id"] for r in pages]
    assert len(ids) == len(set(ids))
