"""Real Celery processes for the tests: the engine's sync workers and Beat (Cluster: env, database
and the processes of one test) and provisioning workers (`celery -A worker worker -Q provisioning`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tests.support.expected import expected
from tests.support.paths import CELERY, ROOT
from tests.support.sim import SIM_TOKEN
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.secrets import generate_key
from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, SyncRun, Tenant


class Cluster:
    """Env + database for the distributed mode, and the worker/beat processes of one test."""

    def __init__(self, db_url: str, redis_url: str, tmp: Path):
        self.db_url = db_url
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env.update({
            "OKTASYNC_BROKER_URL": redis_url, "OKTASYNC_REDIS_URL": redis_url, "OKTASYNC_DATABASE_URL": db_url,
            "OKTASYNC_SECRET_KEY": generate_key(), "OKTASYNC_VISIBILITY_TIMEOUT": "30",
            "OKTASYNC_STALL_TIMEOUT": "15", "OKTASYNC_DISPATCH_INTERVAL": "1", "OKTASYNC_TENANT_MAX_STREAMS": "4",
            "PYTHONPATH": str(ROOT),
        })
        migrate(db_url)
        self.engine = make_engine(db_url)
        self.sessions = make_session_factory(self.engine)
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([CELERY, *args], env=self.env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, concurrency: int = 2, queue: str = "sync") -> subprocess.Popen:
        proc = self._spawn(["-A", "worker", "worker", "-Q", queue, "-c", str(concurrency), "-P", "prefork",
                            "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"], name)
        self.wait_log(name, "ready", timeout=30)
        return proc

    def beat(self, name: str = "beat") -> subprocess.Popen:
        """Beat and the worker that runs its ticks (the Procfile's `dispatcher`, `-Q dispatch -c 1`),
        logging to `<name>-dispatcher.log`."""
        self.worker(f"{name}-dispatcher", concurrency=1, queue="dispatch")
        return self._spawn(["-A", "scheduler", "beat", "--loglevel", "INFO", "-s",
                            str(self.tmp / f"{name}-schedule")], name)

    def wait_log(self, name: str, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = self.tmp / f"{name}.log"
        while time.monotonic() < deadline:
            if text in path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} did not log {text!r} within {timeout}s:\n{path.read_text()[-3000:]}")

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def add_tenant(self, name: str, url: str, *, token: str = SIM_TOKEN, interval: int = 3600,
                   enabled: bool = True, options: dict | None = None, due: bool = False,
                   incremental_interval: int | None = None) -> int:
        from datetime import UTC, datetime, timedelta

        from worker.store.tenants import create_tenant

        with self.sessions() as s:
            t = create_tenant(s, name, url, {"api_token": token}, options=options or {}, sync_interval=interval,
                              enabled=enabled, incremental_interval=incremental_interval,
                              next_sync_at=None if due else datetime.now(UTC) + timedelta(days=1))
            s.commit()
            return t.id

    def runs(self, tenant_id: int) -> list[SyncRun]:
        with self.sessions() as s:
            return list(s.execute(sa.select(SyncRun).where(SyncRun.tenant_id == tenant_id)
                                  .order_by(SyncRun.id)).scalars())

    def wait_runs(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}\n{self.db_state()}\n{self.tail_logs()}")

    def db_state(self) -> str:
        from worker.store.tables import SyncStream

        with self.sessions() as s:
            runs = [f"run {r.id} tenant {r.tenant_id} {r.state} {r.error or ''}" for r in s.execute(
                sa.select(SyncRun).order_by(SyncRun.id)).scalars()]
            open_streams = [str(tuple(r)) for r in s.execute(sa.select(
                SyncStream.run_id, SyncStream.id, SyncStream.kind, SyncStream.state, SyncStream.cursor,
                SyncStream.deferred_until, SyncStream.heartbeat_at, SyncStream.attempts, SyncStream.error).where(
                sa.or_(SyncStream.state.in_(("pending", "active")), SyncStream.attempts > 0,
                       SyncStream.state == "failed"))).all()]
        return "\n".join(runs + open_streams[:40])

    def tail_logs(self) -> str:
        out = []
        for f in sorted(self.tmp.glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()
            bad = [ln for ln in lines if any(w in ln for w in ("ERROR", "WARNING", "Traceback", "Error:"))]
            out.append(f"=== {f.name}: {len(lines)} lines; errors/warnings:\n" + "\n".join(bad[-40:]))
        return "\n".join(out)

    def wait_state(self, run_id: int, states: tuple[str, ...], timeout: float = 60) -> SyncRun:
        out: list[SyncRun] = []

        def done() -> bool:
            with self.sessions() as s:
                run = s.get(SyncRun, run_id, populate_existing=True)
                if run is not None and run.state in states:
                    out.append(run)
                    return True
                return False

        self.wait_runs(done, timeout, f"run {run_id} to reach {states}")
        return out[0]

    def picture(self, tenant_id: int) -> tuple[set[str], set[str], set[str]]:
        """(resources, entitlements, listed grants) of the tenant's current view."""
        with self.sessions() as s:
            run_id = s.execute(sa.select(Tenant.current_run_id).where(Tenant.id == tenant_id)).scalar()
            assert run_id is not None, "tenant has no current view"
            res = set(s.execute(sa.select(ResourceRow.id).where(ResourceRow.run_id == run_id)).scalars())
            ents = set(s.execute(sa.select(EntitlementRow.id).where(EntitlementRow.run_id == run_id)).scalars())
            grants = set(s.execute(sa.select(GrantRow.id).where(
                GrantRow.run_id == run_id, GrantRow.expanded.is_(False))).scalars())
        return res, ents, grants

    def assert_matches(self, tenant_id: int, sim, **options) -> None:
        want = expected(sim.state(), **options)
        res, ents, grants = self.picture(tenant_id)
        assert res == want.resources, (sorted(res - want.resources)[:5], sorted(want.resources - res)[:5])
        assert ents == want.entitlements, (sorted(ents - want.entitlements)[:5], sorted(want.entitlements - ents)[:5])
        assert grants == want.grants, (sorted(grants - want.grants)[:5], sorted(want.grants - grants)[:5])

    def sender(self):
        """A Celery dispatcher publishing to this cluster's broker (env read now, not at import)."""
        from worker import config
        from worker.app import make_app
        from worker.engine.sender import CelerySender

        return CelerySender(make_app(config.load()))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.engine.dispose()


class ProvisioningWorker:
    """A real `celery -A worker worker -Q provisioning` process group."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int = 2):
        self.log = log
        self.fh = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", "provisioning", "-c", str(concurrency),
             "-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n",
             f"prov{time.monotonic_ns()}@%h", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b" ready." in log.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.fh.close()
