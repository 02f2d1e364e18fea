"""`oktasync tenant list --lagging`: one line per tenant whose last success is older than its
interval (or that never succeeded), with why; nothing when none lags."""

from __future__ import annotations

import json
from datetime import timedelta

from worker.store.tables import SyncRun, utcnow
from worker.store.tenants import create_tenant, update_tenant

HOUR = 3600


def add(sessions, name: str, *runs: dict, interval: int = HOUR, **tenant) -> None:
    """A tenant and its runs, oldest first (each a SyncRun's columns; times as seconds ago)."""
    now = utcnow()
    with sessions() as s:
        t = create_tenant(s, name, f"{name}.okta.com", {"api_token": "00lag-token"}, sync_interval=interval, **tenant)
        for run in runs:
            times = {k: now - timedelta(seconds=v) for k, v in run.items() if k.endswith("_at")}
            s.add(SyncRun(tenant_id=t.id, **{**run, **times}))
            s.flush()
        s.commit()


def ok(ago: int) -> dict:
    return {"state": "succeeded", "created_at": ago + 60, "started_at": ago + 60, "finished_at": ago}


def test_each_reason(cli, sessions):
    add(sessions, "fresh", ok(60))
    add(sessions, "failing", ok(2 * HOUR), {"state": "failed", "created_at": 700, "started_at": 700,
                                            "finished_at": 600, "error": "okta: 401 invalid token (E0000011)\ntrace"})
    add(sessions, "paused", ok(5 * HOUR), enabled=False)
    add(sessions, "never", next_sync_at=utcnow() - timedelta(minutes=5))
    add(sessions, "waiting", {"state": "queued", "created_at": 300})
    add(sessions, "late", ok(2 * HOUR), next_sync_at=utcnow() - timedelta(minutes=50))
    add(sessions, "slow", ok(70 * 60), {"state": "running", "created_at": 65 * 60, "started_at": 65 * 60})
    got = cli("tenant", "list", "--lagging")
    assert got.exit_code == 0, got.output
    lines = {ln.split(":", 1)[0]: ln for ln in got.stdout.splitlines()}
    assert sorted(lines) == ["failing", "late", "never", "paused", "slow", "waiting"]
    assert lines["failing"].startswith("failing: failing (last success 2h ago, interval 1h): run ")
    assert "failed 10m ago: okta: 401 invalid token (E0000011)" in lines["failing"] and "trace" not in lines["failing"]
    assert lines["paused"].startswith("paused: paused (last success 5h ago")
    assert lines["never"].startswith("never: never ran (never succeeded") and "due since 5m" in lines["never"]
    assert lines["waiting"].startswith("waiting: queued (never succeeded") and "behind others" in lines["waiting"]
    assert lines["late"].startswith("late: queued (last success 2h ago") and "due since 50m, not started" in lines["late"]
    assert lines["slow"].startswith("slow: running (last success 1h 10m ago") and "running for 1h 5m" in lines["slow"]
    as_json = {r["name"]: r for r in json.loads(cli("tenant", "list", "--lagging", "--json").stdout)}
    assert {n: r["reason"] for n, r in as_json.items()} == {
        "failing": "failing", "late": "queued", "never": "never ran", "paused": "paused", "slow": "running",
        "waiting": "queued"}
    assert as_json["never"]["last_success"] is None and as_json["late"]["interval"] == HOUR


def test_nothing_when_none_lags(cli, sessions):
    assert cli("tenant", "list", "--lagging").stdout == ""  # no tenants at all
    add(sessions, "fresh", ok(60))
    add(sessions, "daily", ok(20 * HOUR), {"state": "running", "created_at": 30, "started_at": 30}, interval=24 * HOUR)
    got = cli("tenant", "list", "--lagging")
    assert got.exit_code == 0 and got.stdout == ""
    # A shorter interval makes the daily tenant lag at once.
    with sessions() as s:
        update_tenant(s, "daily", sync_interval=HOUR)
        s.commit()
    assert cli("tenant", "list", "--lagging").stdout.startswith("daily: running (last success 20h ago, interval 1h)")


def test_a_verify_run_is_not_a_sync(cli, sessions):
    """A recent drift check (`oktasync verify`) does not make a view any fresher."""
    add(sessions, "checked", ok(2 * HOUR), {**ok(60), "kind": "verify"}, next_sync_at=utcnow() - timedelta(minutes=50))
    got = cli("tenant", "list", "--lagging")
    assert got.stdout.startswith("checked: queued (last success 2h ago, interval 1h): due since 50m"), got.stdout
