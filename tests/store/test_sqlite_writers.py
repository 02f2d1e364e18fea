"""Embedded mode's many page threads writing one SQLite file: `immediate()` writers queue on a
per-engine lock (handed over at once, instead of SQLite's busy-handler sleeps), none fails or
loses an update, and the lock is given back however the transaction ends."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from worker.store.db import _writer_lock, immediate, make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.tables import Tenant
from worker.store.tenants import create_tenant


@pytest.fixture
def sqlite(tmp_path, monkeypatch):
    from worker.store.secrets import generate_key

    monkeypatch.setenv("OKTASYNC_SECRET_KEY", generate_key())
    url = f"sqlite:///{tmp_path}/w.db"
    migrate(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s:
        create_tenant(s, "acme", "acme.okta.com", {"api_token": "00" + "x" * 40}, sync_interval=1)
        s.commit()
    yield engine, sessions
    engine.dispose()


def test_concurrent_read_then_write_transactions_lose_nothing(sqlite):
    engine, sessions = sqlite
    errors: list[BaseException] = []

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                with sessions() as s:
                    immediate(s)
                    n = s.execute(sa.select(Tenant.sync_interval)).scalar_one()
                    s.execute(sa.update(Tenant).values(sync_interval=n + 1))
                    s.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(40,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    with sessions() as s:
        assert s.execute(sa.select(Tenant.sync_interval)).scalar_one() == 1 + 8 * 40


def _free_elsewhere(engine) -> bool:
    """Whether another thread can take the engine's writer lock right now."""
    got: list[bool] = []

    def probe() -> None:
        lock = _writer_lock(engine)
        ok = lock.acquire(blocking=False)
        if ok:
            lock.release()
        got.append(ok)

    t = threading.Thread(target=probe)
    t.start()
    t.join(10)
    return got == [True]


@pytest.mark.parametrize("end", ["commit", "rollback", "close", "error"])
def test_the_writer_lock_is_given_back_however_the_transaction_ends(sqlite, end):
    engine, sessions = sqlite
    s = sessions()
    immediate(s)
    s.execute(sa.update(Tenant).values(sync_interval=5))
    assert not _free_elsewhere(engine)
    if end == "commit":
        s.commit()
    elif end == "rollback":
        s.rollback()
    elif end == "error":
        with pytest.raises(sa.exc.IntegrityError):
            s.execute(sa.insert(Tenant).values(id=1, name="acme"))
        s.rollback()
    s.close()
    assert _free_elsewhere(engine)
    with sessions() as other:  # and SQLite's own lock is free too
        immediate(other)
        other.execute(sa.update(Tenant).values(sync_interval=6))
        other.commit()


def test_a_forked_child_does_not_inherit_a_held_writer_lock(tmp_path):
    """Celery prefork forks the worker: a lock some parent thread held at that moment would never
    be released in the child. Run in a fresh interpreter (forking pytest itself is not safe)."""
    import subprocess
    import sys

    script = f"""
import os, threading
from worker.store import db
engine = db.make_engine("sqlite:///{tmp_path}/fork.db")
held, done = threading.Event(), threading.Event()
def writer():  # another thread of the parent, mid-transaction when the fork happens
    with db._writer_lock(engine):
        held.set()
        done.wait()
threading.Thread(target=writer, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    os._exit(0 if db._writer_lock(engine).acquire(timeout=3) else 1)
_, status = os.waitpid(pid, 0)
done.set()
raise SystemExit(os.waitstatus_to_exitcode(status))
"""
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 0
