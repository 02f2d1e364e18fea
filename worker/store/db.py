"""Engines and sessions for the grant store: SQLite by default, PostgreSQL for many machines.

`make_engine(url)` is the one place that knows dialect details:
- a plain `postgresql://user@host/db` URL is rewritten to the psycopg 3 driver we ship;
- SQLite gets WAL, a busy timeout, foreign keys and real transactions (Python 3.11's sqlite3
  does not emit BEGIN before SELECTs, so a reader would not keep one snapshot; we emit BEGIN
  ourselves, and `BEGIN IMMEDIATE` when a connection asks for it with `immediate(session)`);
- every engine is disposed in a forked child (Celery prefork) so pooled connections are never
  shared between processes, and checked out with a pre-ping;
- a PostgreSQL pool keeps `pool_size` connections (and opens as many again for a burst): worker
  processes size it from what they run at once (worker/config.py `db_pool_size`), the metrics
  endpoint keeps one, everything else the default. deploy/README.md has the arithmetic
  against PostgreSQL's max_connections.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from worker import config

ENV_VAR = config.DATABASE_URL_VAR
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option read by the SQLite `begin` hook: "IMMEDIATE" takes the write lock up front,
# which avoids read-then-write lock upgrades failing with "database is locked".
SQLITE_BEGIN_OPTION = "oktasync_sqlite_begin"
# Connections a PostgreSQL engine keeps when its process does not say (the Python API's callers
# may run threads; one-off commands open only what they use).
DEFAULT_POOL_SIZE = 5


class DatabaseURLError(ValueError):
    """A database URL oktasync cannot use; the message says why."""


def database_url(url: str | None = None) -> str:
    """The URL to use: the explicit one, else $OKTASYNC_DATABASE_URL, else ./oktasync.db."""
    return url or config.database_url()


def normalize_url(url: str | URL) -> URL:
    """Parse a URL and pick the shipped driver for plain PostgreSQL URLs."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError with the URL in it
        raise DatabaseURLError(f"not a database URL (expected sqlite:///PATH or postgresql://...): {exc}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise DatabaseURLError(
            f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}; "
            "use sqlite:///PATH or postgresql://user@host/db")
    return parsed


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_fork_hook_lock = threading.Lock()
_fork_hook_installed = False


def _dispose_in_child() -> None:
    # close=False: leave the parent's connections alone, just forget them in the child.
    for engine in list(_engines):
        engine.dispose(close=False)
    _writer_locks.clear()  # a lock held by a parent's thread at fork would never be released here


def _install_fork_hook() -> None:
    global _fork_hook_installed
    with _fork_hook_lock:
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_dispose_in_child)
            _fork_hook_installed = True


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Driver-level autocommit: SQLAlchemy's begin hook below issues BEGIN itself.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def make_engine(url: str | URL | None = None, pool_size: int = DEFAULT_POOL_SIZE, **kwargs: Any) -> Engine:
    """An engine for `url` (default: `database_url()`), configured for its dialect; on PostgreSQL it
    keeps `pool_size` connections and opens up to as many again for a burst."""
    parsed = normalize_url(database_url(url) if not isinstance(url, URL) else url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            parent = os.path.dirname(os.path.abspath(db))
            if not os.path.isdir(parent):
                raise DatabaseURLError(f"SQLite database directory does not exist: {parent}")
    else:
        options.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    options.update(kwargs)
    engine = sa.create_engine(parsed, **options)
    if engine.dialect.name == "sqlite":
        _setup_sqlite(engine)
    _engines.add(engine)
    _install_fork_hook()
    return engine


_cache: dict[str, Engine] = {}
_cache_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """A process-wide engine per URL (safe across fork: children get fresh pools)."""
    key = database_url(url)
    with _cache_lock:
        engine = _cache.get(key)
        if engine is None:
            engine = _cache[key] = make_engine(key)
        return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (tasks commit per page, then log)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def one_connection(sessions: Callable[[], Session]) -> Iterator[Callable[[], Session]]:
    """Sessions like `sessions`' that take turns on one pooled connection until the block ends.

    A task that runs several short transactions (a page: read, write, release, completion) then
    pays one pool checkout and one pre-ping instead of one per transaction. PostgreSQL only: on
    SQLite a checkout carries its BEGIN mode (immediate()), so each transaction keeps its own.
    `sessions` is a sessionmaker; anything else (already one connection) is yielded as it is."""
    bind = sessions.kw.get("bind") if isinstance(sessions, sessionmaker) else None
    if not isinstance(bind, Engine) or bind.dialect.name == "sqlite":  # SQLite, or already one connection
        yield sessions
        return
    with bind.connect() as conn:
        # Each session begins and ends its own transaction on the connection (it is idle between).
        # A partial, not a new sessionmaker: that would define a Session subclass per call.
        yield functools.partial(sessions.class_, **{**sessions.kw, "bind": conn})


# One SQLite writer per engine in this process at a time, queued on a lock that hands over at
# once: waiting in SQLite's busy handler instead means sleeps of up to 100 ms while the write lock
# may already be free (embedded mode runs many page threads on one file). Other processes still
# queue on SQLite's own lock.
_writer_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_HELD = "oktasync_sqlite_writer_lock"


def _writer_lock(engine: Engine) -> threading.RLock:
    with _cache_lock:
        lock = _writer_locks.get(engine)
        if lock is None:
            lock = _writer_locks[engine] = threading.RLock()
        return lock


def immediate(session: Session) -> sa.Connection:
    """Start the session's transaction as a writer (SQLite: BEGIN IMMEDIATE; no-op elsewhere).

    Call it first thing in a transaction that reads and then writes (finalize, claims), so two
    SQLite writers queue for the write lock instead of failing on a lock upgrade.
    """
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and not session.in_transaction():
        lock = _writer_lock(bind.engine if isinstance(bind, sa.Connection) else bind)
        # Bounded like the busy timeout: a transaction left open elsewhere must not hang us
        # (past it, SQLite's own busy handling answers, as without the lock).
        if lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            session.info.setdefault(_HELD, []).append(lock)
    return session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})


@event.listens_for(Session, "after_transaction_end")
def _release_writer_lock(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the session's outermost transaction: committed, rolled back or closed
        for lock in session.info.pop(_HELD, ()):
            lock.release()


def is_sqlite(bind: Engine | sa.Connection | Session) -> bool:
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return bind.dialect.name == "sqlite"
