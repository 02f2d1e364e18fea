"""Queries through the CLI (grants, resources, changes, db upgrade) and the JSONL export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.store import ORG1, sync_and_finalize, user
from worker.cli import main
from worker.store.db import make_engine
from worker.store.migrate import current_revision, head_revision


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def synced(store):
    t = store.tenant("acme")
    sync_and_finalize(store, t, **ORG1)
    return store


def test_export_jsonl_shape(synced):
    code, out = run_cli("export", "--db", synced.url, "--format", "jsonl")
    assert code == 0, out
    records = [json.loads(line) for line in out.splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds == sorted(kinds, key=["resource", "entitlement", "grant"].index)
    by_id = {r["id"]: r for r in records}
    assert by_id["user:u1"] == {"kind": "resource", "id": "user:u1", "resource_type": "user", "resource_id": "u1",
                                "display_name": "User u1", "profile": {"email": "u1@example.com"}}
    assert by_id["app:a1:access"] == {"kind": "entitlement", "id": "app:a1:access", "resource": "app:a1",
                                      "slug": "access", "display_name": "App a1 access"}
    assert by_id["app:a1:access:user:u1"] == {"kind": "grant", "id": "app:a1:access:user:u1", "entitlement": "app:a1:access",
                                              "principal": "user:u1", "expanded": True,
                                              "sources": ["app:a1:access:group:g1"]}
    assert by_id["app:a1:access:group:g1"]["expanded"] is False
    assert by_id["app:a1:access:user:u2"]["expanded"] is False  # Okta listed it
    assert sum(k == "grant" for k in kinds) == len(ORG1["grants"]) + 2
    assert sum(k == "resource" for k in kinds) == len(ORG1["resources"])


def test_export_picks_the_only_tenant_else_asks(synced, tmp_path):
    if synced.engine.dialect.name == "sqlite":
        path = synced.url.removeprefix("sqlite:///")
        # the embedded mode's file: --file and no --tenant, as a real subprocess
        oktasync = str(Path(sys.executable).with_name("oktasync"))
        proc = subprocess.run([oktasync, "export", "--file", path, "--format", "jsonl"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) > 10
        code, out = run_cli("export", "--file", str(tmp_path / "missing.db"))
        assert code != 0 and "no such file" in out
    synced.tenant("beta")
    code, out = run_cli("export", "--db", synced.url)
    assert code != 0 and "2 tenants" in out and "acme, beta" in out
    code, out = run_cli("export", "--db", synced.url, "--tenant", "beta")
    assert code != 0 and "no finished sync" in out
    code, out = run_cli("export", "--db", synced.url, "--tenant", "acme", "-o", str(tmp_path / "out.jsonl"))
    assert code == 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) > 10


def test_grants_command(synced):
    code, out = run_cli("grants", "--db", synced.url, "--user", "u1", "--json")
    assert code == 0, out
    got = {g["id"]: g for g in json.loads(out)}
    assert set(got) == {"group:g1:member:user:u1", "app:a1:access:user:u1"}
    assert got["app:a1:access:user:u1"]["expanded"] is True
    code, out = run_cli("grants", "--db", synced.url, "--app", "a1")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["ENTITLEMENT", "PRINCIPAL", "HOW", "VIA"]
    assert len(lines) == 4 and "app:a1:access:group:g1" in out and "expanded" in out
    code, out = run_cli("grants", "--db", synced.url, "--entitlement", "app:a1:access", "--listed-only", "--json")
    assert {g["principal"] for g in json.loads(out)} == {"group:g1", "group:g2", "user:u2", "user:u3"}
    code, out = run_cli("grants", "--db", synced.url, "--principal", "robot:1")
    assert code != 0 and "robot" in out
    code, out = run_cli("resources", "--db", synced.url, "--type", "group", "--json")
    assert [r["id"] for r in json.loads(out)] == ["group:g1", "group:g2"]


def test_changes_command(synced):
    with synced.Session() as s:
        from worker.store.tenants import get_tenant
        t = get_tenant(s, "acme").id
    run2, _ = sync_and_finalize(synced, t, ORG1["resources"] + [user("u4")], ORG1["entitlements"],
                    ORG1["grants"][1:] + [ORG1["grants"][0].__class__("group:g1:member", "user", "u4")])
    code, out = run_cli("changes", "acme", "--db", synced.url)
    assert code == 0, out
    assert f"run {run2}: 2 added, 2 removed" in out
    code, out = run_cli("changes", "acme", "--db", synced.url, "--json")
    rows = json.loads(out)
    assert {(r["change"], r["grant"]) for r in rows} == {
        ("added", "group:g1:member:user:u4"), ("added", "app:a1:access:user:u4"),
        ("removed", "group:g1:member:user:u1"), ("removed", "app:a1:access:user:u1")}
    code, out = run_cli("changes", "nope", "--db", synced.url)
    assert code != 0 and "no tenant 'nope'" in out
    code, out = run_cli("changes", "acme", "--db", synced.url, "--run", "424242")
    assert code != 0 and "not a run of tenant" in out


def test_db_upgrade_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out = run_cli("db", "upgrade", "--db", url)
    assert code == 0, out
    assert current_revision(make_engine(url)) == head_revision()
    code, out = run_cli("db", "upgrade", "--db", url)  # idempotent
    assert code == 0 and head_revision() in out
    code, out = run_cli("grants", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert code != 0 and "oktasync db upgrade" in out
