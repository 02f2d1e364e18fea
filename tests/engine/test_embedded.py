"""The embedded mode end to end: one process, in-process broker and limiter, SQLite, real oktasim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.support.expected import expected
from tests.support.sim import SIM_TOKEN
from worker.connector import SyncOptions
from worker.engine.embedded import run_embedded
from worker.store.db import make_engine
from worker.store.tables import EntitlementRow, GrantRow, LimiterState, ResourceRow, Tenant

OKTASYNC = str(Path(sys.executable).with_name("oktasync"))


def picture(file):
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        run_id = c.execute(sa.select(Tenant.current_run_id)).scalar()
        res = set(c.execute(sa.select(ResourceRow.id).where(ResourceRow.run_id == run_id)).scalars())
        ents = set(c.execute(sa.select(EntitlementRow.id).where(EntitlementRow.run_id == run_id)).scalars())
        grants = set(c.execute(sa.select(GrantRow.id).where(GrantRow.run_id == run_id,
                                                             GrantRow.expanded.is_(False))).scalars())
        creds = c.execute(sa.select(Tenant.credentials)).scalar()
    engine.dispose()
    return res, ents, grants, creds


def test_embedded_sync_matches_the_org_and_resyncs(oktasim, tmp_path):
    sim = oktasim(["--users", "120", "--groups", "15", "--apps", "6", "--seed", "11", "--window-seconds", "5"])
    file = tmp_path / "sync.db"
    opts = SyncOptions(sync_custom_roles=True)
    first = run_embedded(sim.url, {"api_token": SIM_TOKEN}, opts, file=str(file), concurrency=4)
    assert first.state == "succeeded", first.error
    # Read-ahead (the next page of a list fetched while a page is written) sends no request the
    # sync does not count: Okta saw exactly the run's requests.
    assert httpx.get(f"{sim.url}/__sim/stats").json()["requests_total"] == first.counts["requests"]
    want = expected(sim.state(), sync_custom_roles=True)
    res, ents, grants, creds = picture(file)
    assert res == want.resources
    assert ents == want.entitlements
    assert grants == want.grants
    assert SIM_TOKEN.encode() not in bytes(creds)  # encrypted at rest
    assert (file.parent / "sync.db.key").stat().st_mode & 0o077 == 0
    # What the limiter learned of the org's buckets is kept for the next run (as Redis keeps it for
    # workers): the users bucket with the limit Okta's headers gave.
    users_limit = int(httpx.get(f"{sim.url}/api/v1/users?limit=1", headers={"Authorization": f"SSWS {SIM_TOKEN}"}
                                ).headers["X-Rate-Limit-Limit"])
    learned = limiter_state(file)
    assert learned["buckets"]["/api/v1/users"]["limit"] == users_limit
    assert learned["buckets"]["/api/v1/users"]["known"] == 1
    # A second run into the same file replaces the view (one generation) and records no changes.
    second = run_embedded(sim.url, {"api_token": SIM_TOKEN}, opts, file=str(file), concurrency=1)
    assert second.state == "succeeded", second.error
    assert picture(file)[:3] == (res, ents, grants)
    assert second.counts.get("added", 0) == 0 and second.counts.get("removed", 0) == 0
    assert limiter_state(file)["at"] > learned["at"]


def test_concurrency_one_sends_one_request_at_a_time(oktasim, tmp_path):
    """`--concurrency 1` crawls as baton-okta does, read-ahead included: one request in flight."""
    sim = oktasim(["--users", "60", "--groups", "8", "--apps", "4", "--seed", "3", "--latency-ms", "5"])
    run = run_embedded(sim.url, {"api_token": SIM_TOKEN}, SyncOptions(), file=str(tmp_path / "one.db"), concurrency=1)
    assert run.state == "succeeded", run.error
    stats = httpx.get(f"{sim.url}/__sim/stats").json()
    assert stats["max_in_flight"] == 1 and stats["requests_total"] == run.counts["requests"]


def limiter_state(file):
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        state = c.execute(sa.select(LimiterState.state)).scalar_one()
    engine.dispose()
    return state


def test_embedded_cli_success_and_failure(oktasim, tmp_path):
    sim = oktasim(["--users", "30", "--groups", "4", "--apps", "3", "--seed", "12", "--window-seconds", "5"])
    ok = subprocess.run([OKTASYNC, "--domain", sim.url, "--file", str(tmp_path / "a.db"),
                         "--concurrency", "2"], env={"OKTASYNC_API_TOKEN": SIM_TOKEN, "PATH": "/usr/bin:/bin"},
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "resources:" in ok.stdout and "user 30" in ok.stdout
    bad = subprocess.run([OKTASYNC, "--domain", sim.url, "--api-token",
                          "00bad-token-00000000000000000000000000000", "--file", str(tmp_path / "b.db")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "failed" in bad.stderr and "credentials" in bad.stderr
    assert "00bad-token" not in bad.stderr + bad.stdout
    missing = subprocess.run([OKTASYNC, "--domain", sim.url],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "credentials are missing" in missing.stderr


def test_embedded_cli_unusable_file_says_which_and_what_to_do(tmp_path):
    """--file that cannot hold the sync fails before any request, naming the file, without a traceback."""
    token = "00secret-token-0000000000000000000000000000"
    (tmp_path / "notes.txt").write_text("not a database\n")
    cases = [(tmp_path, "is a directory", "--file " + str(tmp_path / "sync.db")),
             (tmp_path / "notes.txt", "file is not a database", "give --file a new file"),
             (tmp_path / "missing" / "x.db", "does not exist", "missing")]
    for file, reason, todo in cases:
        got = subprocess.run([OKTASYNC, "--domain", "acme.okta.com", "--api-token", token, "--file", str(file)],
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 2, (file, got.stdout, got.stderr)
        assert reason in got.stderr and todo in got.stderr and str(file) in got.stderr, got.stderr
        assert "Traceback" not in got.stderr and "sqlalche.me" not in got.stderr
        assert token not in got.stderr + got.stdout


def test_demo_syncs_a_simulated_org_and_shows_what_it_found(tmp_path):
    """The README's first command: exit 0, counts per type, example grants, rate-limit use."""
    got = subprocess.run([OKTASYNC, "demo", "--users", "40", "--groups", "5", "--apps", "3", "--latency-ms", "0",
                          "--window-seconds", "5", "--concurrency", "2"],
                         capture_output=True, text=True, timeout=180)
    assert got.returncode == 0, (got.stdout, got.stderr[-3000:])
    for text in ("resources:", "user 40", "entitlements:", "grants:", "rate limit:", "example grants:"):
        assert text in got.stdout, (text, got.stdout)
    # A --file it cannot use is refused with the reason, without a traceback.
    bad = subprocess.run([OKTASYNC, "demo", "--users", "5", "--file", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "is a directory" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_refused_credentials_fail_the_run_at_once(oktasim, tmp_path):
    """A 401 that survives the client's own token refresh is final: no backoff retries."""
    sim = oktasim(["--users", "20", "--groups", "3", "--apps", "2", "--seed", "13"])
    got = run_embedded(sim.url, {"api_token": "00bad-token-00000000000000000000000000000"}, SyncOptions(),
                       file=str(tmp_path / "s.db"), concurrency=2)
    assert got.state == "failed" and "401" in got.error and "attempts" not in got.error, got.error
    assert got.progress.retries == 0


def test_failure_hints_name_what_to_check():
    """The 'what to do' line for the errors a wrong token, host or domain actually produce."""
    from worker.commands.report import hint_for

    cases = {
        "listing users: OktaAuthenticationError: Okta 401 E0000011: Invalid token provided": "credentials",
        "listing users: OktaTransientError: Okta request connection failed while sending (ConnectError: "
        "[Errno 111] Connection refused) [GET /api/v1/users] (after 5 attempts)": "check --domain and that",
        "listing groups: OktaNotFound: Okta 404: response body is not JSON [GET http://127.0.0.1:1/api/v1/groups] "
        "(after 5 attempts)": "does not answer like an Okta org",
    }
    for error, hint in cases.items():
        assert hint in hint_for(error), (error, hint_for(error))
    # Distributed mode: the fix is the stored tenant's settings, not a flag of `oktasync sync`.
    wrong_token = next(iter(cases))
    assert "`oktasync tenant update acme` with --api-token" in hint_for(wrong_token, tenant="acme")


def test_second_sync_into_the_same_file_is_refused_and_a_killed_one_is_discarded(oktasim, tmp_path):
    """While one process syncs into a file another is refused (it used to discard the first's run);
    once that process is killed, the next sync discards its partial run and succeeds."""
    import os
    import signal
    import time

    sim = oktasim(["--users", "30", "--groups", "4", "--apps", "3", "--seed", "14", "--latency-ms", "150"])
    file = tmp_path / "s.db"
    args = [OKTASYNC, "--domain", sim.url, "--file", str(file), "--concurrency", "1"]
    env = {**os.environ, "OKTASYNC_API_TOKEN": SIM_TOKEN}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _has_running_run(file):
            assert first.poll() is None and time.monotonic() < deadline, "the first sync never started"
            time.sleep(0.2)
        # Freeze the first sync mid-run (however loaded the machine, it cannot finish meanwhile).
        first.send_signal(signal.SIGSTOP)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another oktasync" in second.stderr, second.stderr
        assert first.poll() is None  # the first one is not disturbed
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        third = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        states = c.execute(sa.text("select state, error from sync_runs order by id")).all()
    engine.dispose()
    assert [s for s, _ in states] == ["failed", "succeeded"] and "stopped" in states[0][1]


def _has_running_run(file) -> bool:
    if not file.exists():
        return False
    engine = make_engine(f"sqlite:///{file}")
    try:
        with engine.connect() as c:
            return c.execute(sa.text("select count(*) from sync_runs where state = 'running'")).scalar() > 0
    except sa.exc.OperationalError:  # tables not created yet
        return False
    finally:
        engine.dispose()
