"""Fifty tenants, each its own Okta org, synced by the distributed mode: one `oktasim --orgs 50`
process, `oktasync tenant import`, two real Celery workers and Beat on Redis and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from worker.store.tables import SyncRun, Tenant

ORGS = 50
# Small orgs so fifty full syncs fit in well under a minute on a quiet machine.
SMALL = ["--users", "20", "--groups", "4", "--apps", "3", "--window-seconds", "5"]


class Org:
    """One org of a multi-org oktasim, as assert_matches reads it (its own /__sim/state)."""

    def __init__(self, url: str):
        self.url = url

    def state(self) -> dict:
        return httpx.get(f"{self.url}/__sim/state", timeout=30).raise_for_status().json()


def _oktasync(cluster, *args: str) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("oktasync"))
    return subprocess.run([exe, *args], env=cluster.env, capture_output=True, text=True, timeout=180)


# 141 s measured with the 2-core machine at load 20; not shown to fit ~60 s, so left to `-m slow`.
@pytest.mark.slow
def test_fifty_tenants_each_equal_their_own_org(cluster, oktasim, tmp_path):
    oktasim([*SMALL, "--orgs", str(ORGS), "--seed", "500", "--orgs-file", str(tmp_path / "orgs.jsonl")])
    orgs = [json.loads(line) for line in (tmp_path / "orgs.jsonl").read_text().splitlines()]
    assert len(orgs) == ORGS
    tenants_file = tmp_path / "tenants.jsonl"
    tenants_file.write_text("".join(json.dumps({"name": f"org{i:02d}", "domain": o["url"], "api_token": o["token"],
                                                "interval": 3600}) + "\n" for i, o in enumerate(orgs)))
    tenants_file.chmod(0o600)  # it holds the tokens themselves
    imported = _oktasync(cluster, "tenant", "import", str(tenants_file))
    assert imported.returncode == 0, imported.stderr
    assert f"{ORGS} added" in imported.stderr, imported.stderr
    assert all(o["token"] not in imported.stdout + imported.stderr for o in orgs)

    with cluster.sessions() as s:
        ids = dict(s.execute(sa.select(Tenant.name, Tenant.id)).all())
    tenant_ids = [ids[f"org{i:02d}"] for i in range(ORGS)]

    cluster.worker("w1")
    cluster.worker("w2")
    cluster.beat()

    def every_tenant_synced() -> bool:
        with cluster.sessions() as s:
            done = s.execute(sa.select(sa.func.count(sa.distinct(SyncRun.tenant_id)))
                             .where(SyncRun.state == "succeeded")).scalar()
        return done == ORGS

    cluster.wait_runs(every_tenant_synced, 300, f"all {ORGS} tenants synced")
    with cluster.sessions() as s:
        failed = s.execute(sa.select(SyncRun.tenant_id, SyncRun.error).where(SyncRun.state == "failed")).all()
    assert failed == []

    # Each tenant's view is its own org, exactly: nothing missing, nothing from another org.
    users: list[set[str]] = []
    for tid, org in zip(tenant_ids, orgs, strict=True):
        cluster.assert_matches(tid, Org(org["url"]))
        users.append({r for r in cluster.picture(tid)[0] if r.startswith("user:")})
    # The orgs' users differ (distinct seeds), so equality above is a real check against leaks.
    assert all(a.isdisjoint(b) for i, a in enumerate(users) for b in users[i + 1:])

    # Both workers did pages, and no tenant is left lagging.
    assert "oktasync.sync.page" in cluster.log("w1") and "oktasync.sync.page" in cluster.log("w2")
    lagging = _oktasync(cluster, "tenant", "list", "--lagging")
    assert lagging.returncode == 0 and lagging.stdout.strip() == "", lagging.stdout + lagging.stderr
