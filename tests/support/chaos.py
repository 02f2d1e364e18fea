"""Chaos helpers: the engine's Cluster with short timeouts so a killed worker's message comes back
in seconds, a restartable throwaway Redis with AOF, and helpers that kill processes and check
"exact, nothing twice"."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

from tests.support.cluster import Cluster
from tests.support.services import free_port, wait_port
from worker.store.tables import GrantRow, SyncRun

# Fast recovery: a killed worker's messages come back after ~10 s, stalled streams are reaped after 6 s.
FAST = {"OKTASYNC_VISIBILITY_TIMEOUT": "12", "OKTASYNC_STALL_TIMEOUT": "6", "OKTASYNC_DISPATCH_INTERVAL": "1"}


def make_cluster(pg_url: str, redis_url: str, tmp: Path, monkeypatch, **env: str) -> Cluster:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    c = Cluster(pg_url, redis_url, tmp)
    c.env.update({**FAST, **env})
    for key, value in c.env.items():
        if key.startswith("OKTASYNC_"):
            monkeypatch.setenv(key, value)
    return c


class OwnRedis:
    """A redis-server of this test alone, on a fixed port, AOF on (`appendfsync always`) so a restart
    keeps the queued messages; stop()/start() restart it on the same port."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise RuntimeError("redis-server is needed on PATH for the Redis restart test")
        self.dir = tempfile.mkdtemp(prefix="oktasync-chaos-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--maxmemory-policy", "noeviction", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


_orphans: list[int] = []


def kill9(pid: int) -> None:
    """SIGKILL one process; remember its children (pool processes we started) to clean them up."""
    _orphans.extend(children(pid))
    os.kill(pid, signal.SIGKILL)


def reap_orphans(c: Cluster) -> None:
    for pid in _orphans:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _orphans.clear()


def start_run(c: Cluster, tenant_id: int, kind: str = "full") -> int:
    from worker.engine import steps
    from worker.store import runs

    with c.sessions() as s:
        runs.begin_write(s)
        run_id = runs.create_run(s, tenant_id, kind)
        s.commit()
    c.sender().enqueue(steps.START, [run_id])
    return run_id


def pages_done(c: Cluster, run_id: int) -> int:
    from worker.store.tables import SyncStream

    with c.sessions() as s:
        return s.execute(sa.select(sa.func.coalesce(sa.func.sum(SyncStream.pages), 0))
                         .where(SyncStream.run_id == run_id)).scalar() or 0


def wait_pages(c: Cluster, run_id: int, n: int, timeout: float = 60) -> None:
    c.wait_runs(lambda: pages_done(c, run_id) >= n, timeout, f"run {run_id} to do {n} pages")


def assert_exact_once(c: Cluster, tenant_id: int, run_id: int, sim) -> None:
    """The run succeeded, the view equals the org, and nothing was taken twice."""
    from worker.store.tables import AccessChange, SyncStream

    c.assert_matches(tenant_id, sim)
    st = sim.state()
    with c.sessions() as s:
        run = s.get(SyncRun, run_id)
        assert run.state == "succeeded", run.error
        # Pages/items counted once per list even though pages were redelivered or retried.
        pages, items = s.execute(sa.select(SyncStream.pages, SyncStream.items).where(
            SyncStream.run_id == run_id, SyncStream.kind == "users")).one()
        assert items == len(st["users"]) and pages == -(-len(st["users"]) // 200), (pages, items)
        assert run.counts["resources_by_type"]["user"] == len(st["users"])
        changes = s.execute(sa.select(AccessChange.grant_id, AccessChange.change).where(
            AccessChange.run_id == run_id)).all()
        assert len(changes) == len(set(changes)), "an access change was recorded twice"
        n_grants = s.execute(sa.select(sa.func.count()).select_from(GrantRow).where(
            GrantRow.run_id == run_id)).scalar()
        assert all(ch in ("added", "removed") for _, ch in changes), {ch for _, ch in changes}
        assert sum(ch == "added" for _, ch in changes) <= n_grants

