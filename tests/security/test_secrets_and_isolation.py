"""Secrets never in clear (database, broker messages, logs, errors, exports) after a real
distributed sync + provisioning, for an SSWS tenant and an OAuth (private key) tenant; and tenant
isolation: each tenant's Okta only ever sees its own token, and queries never mix tenants.
(Flower's authentication and its task pages: tests/ops/test_procfile.py and test_flower.py.)"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.chaos import start_run

EXE = str(Path(sys.executable).with_name("oktasync"))
ORG = ["--users", "120", "--groups", "10", "--apps", "5", "--window-seconds", "5"]


def _redis_dump(url: str) -> str:
    """Every key and value of the broker database, message bodies base64-decoded too."""
    r = redis.Redis.from_url(url)
    out: list[str] = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key).decode()
        if kind == "list":
            values = r.lrange(key, 0, -1)
        elif kind == "hash":
            values = [v for pair in r.hgetall(key).items() for v in pair]
        elif kind == "zset":
            values = [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            values = list(r.smembers(key))
        elif kind == "string":
            values = [r.get(key) or b""]
        else:
            values = []
        out.append(key.decode(errors="replace"))
        for v in values:
            text = v.decode(errors="replace")
            out.append(text)
            for chunk in text.replace('"', " ").split():  # kombu envelopes: base64 bodies inside JSON
                if len(chunk) > 16:
                    try:
                        out.append(base64.b64decode(chunk.rstrip(","), validate=True).decode(errors="replace"))
                    except ValueError:
                        pass
    r.close()
    return "\n".join(out)


def _database_dump(engine: sa.Engine) -> str:
    """Every row of every table as PostgreSQL text (bytea shows as \\x hex)."""
    with engine.connect() as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        rows = [f"{t}: {row}" for t in tables for row in conn.execute(sa.text(f'SELECT x::text FROM "{t}" x')).scalars()]
    assert any(r.startswith("tenants:") for r in rows) and any(r.startswith("grants:") for r in rows)
    return "\n".join(rows)


def _forms(secret: str) -> list[str]:
    """The secret as text, as bytea hex, and as base64 (a lazily encoded column would show it so)."""
    raw = secret.encode()
    return [secret, raw.hex(), base64.b64encode(raw).decode()[:-4]]


@pytest.mark.slow
def test_secrets_never_in_clear(chaos, oktasim, tmp_path):
    token = "00sec" + secrets.token_urlsafe(30)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    (tmp_path / "private.pem").write_text(pem)
    (tmp_path / "public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    sim = oktasim([*ORG, "--api-token", f"{token}=super-admin", "--oauth-client-id", "0oasecapp",
                   "--oauth-public-key", str(tmp_path / "public.pem"), "--oauth-key-id", "kid-sec"])
    key_lines = [ln for ln in pem.splitlines() if ln and "-----" not in ln]
    secret_list = [token, chaos.env["OKTASYNC_SECRET_KEY"], key_lines[1], key_lines[len(key_lines) // 2]]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([EXE, *args], env=chaos.env, capture_output=True, text=True, timeout=120)

    assert cli("tenant", "add", "ssws", "--domain", sim.url, "--api-token", token, "--paused").returncode == 0
    assert cli("tenant", "add", "oauth", "--domain", sim.url, "--okta-client-id", "0oasecapp", "--okta-private-key",
               "@" + str(tmp_path / "private.pem"), "--okta-private-key-id", "kid-sec", "--paused").returncode == 0
    from worker.store.tenants import get_tenant

    with chaos.sessions() as s:
        ids = {n: get_tenant(s, n).id for n in ("ssws", "oauth")}
    runs = {n: start_run(chaos, tid) for n, tid in ids.items()}
    # A provisioning request too (its message sits in the queue until a provisioner starts).
    st = sim.state()
    group = next(g for g in st["groups"] if g["type"] == "OKTA_GROUP")
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in group["members"])
    got = cli("provision", "grant", "--tenant", "oauth", "--entitlement", f"group:{group['id']}:member",
              "--principal", f"user:{uid}", "--idempotency-key", "sec-1")
    assert got.returncode == 0, got.stderr
    dumps = [_redis_dump(chaos.env["OKTASYNC_BROKER_URL"])]  # messages as published, before any worker
    # Sample the broker while messages are in flight or unacked, from a thread: a small org's run
    # ends within a second or two, faster than the loop below goes round.
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            dumps.append(_redis_dump(chaos.env["OKTASYNC_BROKER_URL"]))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chaos.worker("w1")
    chaos._spawn(["-A", "worker", "worker", "-Q", "provisioning", "-c", "1", "-n", "prov@%h", "--loglevel", "INFO",
                  "--without-gossip", "--without-mingle"], "prov")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [chaos.wait_state(r, ("queued", "running", "finalizing", "succeeded", "failed")).state
                  for r in runs.values()]
        req = cli("provision", "status", "sec-1", "--tenant", "oauth", "--json")
        if all(s in ("succeeded", "failed") for s in states) and '"succeeded"' in req.stdout:
            break
        time.sleep(0.3)
    done.set()
    sampler.join()
    for name, run_id in runs.items():
        run = chaos.wait_state(run_id, ("succeeded", "failed"))
        assert run.state == "succeeded", (name, run.error)
    assert json.loads(req.stdout)["state"] == "succeeded", req.stdout
    assert uid in next(g for g in sim.state()["groups"] if g["id"] == group["id"])["members"]
    # A failing run: its error message and the CLI output do not echo the (wrong) token.
    wrong = "00wrong" + secrets.token_urlsafe(30)
    secret_list.append(wrong)
    assert cli("tenant", "update", "ssws", "--api-token", wrong).returncode == 0
    failed = cli("sync", "ssws", "--wait", "--timeout", "90")
    assert failed.returncode == 1 and "failed" in failed.stderr
    runs_json = cli("runs", "ssws", "--json").stdout
    export = cli("export", "--tenant", "oauth").stdout + cli("export", "--tenant", "ssws").stdout
    assert export.count('"kind": "grant"') + export.count('"kind":"grant"') > 10
    places = {
        "database": _database_dump(chaos.engine),
        "broker": "\n".join(dumps),
        "logs": "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log")),
        "cli output": failed.stdout + failed.stderr + runs_json + cli("tenant", "show", "oauth").stdout,
        "export": export,
    }
    assert len(dumps) >= 2 and "oktasync.sync.page" in places["broker"]
    assert "callbacks" in places["broker"]  # message bodies were really decoded and searched
    for where, text in places.items():
        for secret in secret_list:
            for form in _forms(secret):
                assert form not in text, f"a secret ({secret[:6]}...) is visible in the {where}"
        assert "BEGIN PRIVATE KEY" not in text, where


def test_each_okta_sees_only_its_own_token_and_queries_never_mix(chaos, oktasim, local_server):
    token_a, token_b = "00tenA" + secrets.token_urlsafe(30), "00tenB" + secrets.token_urlsafe(30)
    sim_a = oktasim([*ORG, "--api-token", f"{token_a}=super-admin", "--seed", "41"])

    def okta_b(req):  # a tiny real "Okta": empty lists, records every Authorization header
        return 200, {"Content-Type": "application/json"}, orjson.dumps([])

    srv_b = local_server(okta_b)
    a = chaos.add_tenant("a", sim_a.url, token=token_a)
    b = chaos.add_tenant("b", srv_b.url, token=token_b)
    chaos.worker("w1")
    run_a, run_b = start_run(chaos, a), start_run(chaos, b)
    assert chaos.wait_state(run_a, ("succeeded", "failed"), timeout=120).state == "succeeded"
    assert chaos.wait_state(run_b, ("succeeded", "failed"), timeout=120).state == "succeeded"
    seen_b = {r["headers"].get("Authorization") for r in srv_b.requests}
    assert seen_b == {f"SSWS {token_b}"}, seen_b  # B's Okta never saw A's token
    # A's simulator accepts only token_a: a request with B's token would have been a 401 and failed the run.
    chaos.assert_matches(a, sim_a)
    from worker.store import queries

    with chaos.sessions() as s:
        users_a = {r.id for r in queries.resources(s, "a", "user")}
        assert len(users_a) == 120 and queries.resources(s, "b", "user") == []
        assert queries.grants(s, "b") == [] and len(queries.grants(s, "a")) > 100
        some_user = next(iter(users_a))
        assert queries.effective_access(s, "b", some_user) == []
        assert queries.grants_for_principal(s, "b", f"user:{some_user}") == []
        assert queries.effective_access(s, "a", some_user) is not None
