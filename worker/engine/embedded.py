"""Embedded mode: sync one org in this process into a SQLite file, on the engine's own steps.

The broker is an in-process thread pool with a timer heap (InProcessSender), the limiter is
the in-process backend, the store is SQLite with migrations applied on open, and the credentials
are stored encrypted with a key kept next to the file (`<file>.key`, mode 0600). A lock on
`<file>.lock` keeps two processes from syncing into one file at once.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import DatabaseError

from worker.connector import SyncOptions
from worker.connector.tenant_client import limiter_key, memory_limiter, tenant_factory
from worker.engine import steps
from worker.engine.read_ahead import ReadAhead
from worker.engine.runtime import Runtime
from worker.engine.sender import InProcessSender
from worker.store import runs
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.secrets import load_keys, local_key_file
from worker.store.tables import SyncRun
from worker.store.tenants import (
    create_tenant,
    list_tenants,
    load_limiter_state,
    save_limiter_state,
    update_tenant,
)

TERMINAL = ("succeeded", "failed")


class EmbeddedError(RuntimeError):
    """The embedded sync could not run or did not succeed; the message says what to do."""


@dataclass
class Progress:
    """Counters fed by the engine's events (thread-safe), read by the terminal display."""

    lists_opened: int = 0
    lists_done: int = 0
    pages: int = 0
    items: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    retries: int = 0
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            if kind == "run_started":
                self.lists_opened += int(data.get("streams", 0))
            elif kind == "page":
                self.pages += 1
                self.items += int(data.get("items", 0))
                self.lists_opened += int(data.get("opened", 0))
                if data.get("done"):
                    self.lists_done += 1
                for w in data.get("warnings") or ():
                    if w not in self.warnings:
                        self.warnings.append(w)
            elif kind == "wait":
                self.waits += 1
                self.wait_seconds += float(data.get("seconds", 0))
            elif kind == "retry":
                self.retries += 1

    def line(self) -> str:
        with self._lock:
            return (f"lists {self.lists_done}/{self.lists_opened}  pages {self.pages}  items {self.items}  "
                    f"rate-limit waits {self.waits} ({self.wait_seconds:.1f}s)  "
                    f"{time.monotonic() - self.started:.0f}s")


@dataclass
class EmbeddedResult:
    run_id: int
    state: str
    error: str | None
    counts: dict[str, Any]
    warnings: list[str]
    elapsed: float
    progress: Progress
    file: str
    limiter_stats: dict[str, Any] = field(default_factory=dict)
    kind: str = "full"  # "full", "incremental" or "verify"
    reason: str | None = None  # why it was that kind


def tenant_name(domain: str) -> str:
    host = urlsplit(domain if "://" in domain else f"https://{domain}").hostname or domain
    return host


def _check_path(file: Path) -> None:
    if not file.parent.is_dir():
        raise EmbeddedError(f"directory {file.parent} does not exist (for --file {file})")
    if file.is_dir():
        raise EmbeddedError(f"--file {file} is a directory; name a file in it, e.g. --file {file / 'sync.db'}")


@contextmanager
def _file_errors(file: Path) -> Iterator[None]:
    """Turn what an unusable --file raises into an EmbeddedError saying what to do."""
    try:
        yield
    except DatabaseError as exc:  # unwritable place, read-only file, not a SQLite file
        raise EmbeddedError(
            f"cannot use {file} as the sync file ({exc.orig or exc}); give --file a new file in a directory "
            "you can write, or a file an earlier sync created") from None
    except OSError as exc:
        raise EmbeddedError(f"cannot create or read the key file {file}.key ({exc.strerror}); give --file a "
                            "path in a directory you can write") from None


def _prepare(file: Path, domain: str, credentials: dict[str, str], options: SyncOptions) -> tuple[Any, Any, int]:
    """Migrate the file, store the tenant (encrypted credentials), return (engine, keys, tenant id)."""
    _check_path(file)
    with _file_errors(file):
        return _open_file(file, domain, credentials, options)


def _open_store(file: Path) -> tuple[Any, Any]:
    """(engine, keys) of the file, migrated; the key file next to it is created if missing."""
    url = f"sqlite:///{file}"
    migrate(url)
    return make_engine(url), load_keys(local_key_file(str(file) + ".key"))


def _open_file(file: Path, domain: str, credentials: dict[str, str], options: SyncOptions) -> tuple[Any, Any, int]:
    engine, keys = _open_store(file)
    sessions = make_session_factory(engine)
    name = tenant_name(domain)
    with sessions() as s:
        others = [t for t in list_tenants(s) if t.name != name]
        if others:
            raise EmbeddedError(
                f"{file} holds a sync of {others[0].name}, not {name}; use another --file for this org")
        existing = [t for t in list_tenants(s) if t.name == name]
        if existing:
            tenant = update_tenant(s, name, domain=domain, credentials=credentials, options=options.to_dict(),
                                   keys=keys)
        else:
            # Interval 0 and no due time: the embedded file is never picked up by the dispatcher.
            tenant = create_tenant(s, name, domain, credentials, options=options.to_dict(), sync_interval=0,
                                   keys=keys)
        s.commit()
        return engine, keys, tenant.id


def run_embedded(domain: str, credentials: dict[str, str], options: SyncOptions, *, file: str = "sync.db",
                 concurrency: int = 8, rate_limit_share: float = 0.8,
                 on_progress: Callable[[Progress], None] | None = None, progress_every: float = 1.0,
                 stall_timeout: float = 120.0, full: bool = False,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> EmbeddedResult:
    """Sync `domain` once; returns the result (state succeeded or failed). A file that holds a
    complete sync is synced incrementally (when its cursor allows) unless `full`. `on_event` also
    receives the engine's events (bench/incremental_bench.py times the run's phases with them)."""
    _check_limits(concurrency, rate_limit_share)
    path = Path(file).expanduser().resolve()
    _check_path(path)
    # Lock first: a second process must not write into the file (tenant row, migrations) while
    # the first one syncs, nor fail on its write lock before saying who holds the file.
    lock = _hold_file_lock(path)
    try:
        engine, keys, tenant_id = _prepare(path, domain, credentials, options)
        return _sync_prepared(domain, path, engine, keys, tenant_id, concurrency, rate_limit_share, on_progress,
                              progress_every, stall_timeout, "full" if full else "incremental", on_event)
    finally:
        os.close(lock)


def verify_embedded(file: str, domain: str | None = None, credentials: dict[str, str] | None = None, *,
                    concurrency: int = 8, rate_limit_share: float = 0.8,
                    on_progress: Callable[[Progress], None] | None = None, progress_every: float = 1.0,
                    stall_timeout: float = 120.0) -> EmbeddedResult:
    """The drift check of a file that holds a complete sync: a verify run (a full listing compared
    with the file's view, which it leaves as it is; worker/store/drift.py) with the options the
    file was synced with. `credentials`, when given, replace the stored ones (as a sync's do)."""
    _check_limits(concurrency, rate_limit_share)
    path = Path(file).expanduser().resolve()
    _check_path(path)
    if not path.is_file():
        raise EmbeddedError(f"{path} does not exist: give --file a file an earlier sync created")
    lock = _hold_file_lock(path)
    try:
        with _file_errors(path):
            engine, keys, tenant_id, synced_domain = _open_synced(path, domain, credentials)
        return _sync_prepared(synced_domain, path, engine, keys, tenant_id, concurrency, rate_limit_share,
                              on_progress, progress_every, stall_timeout, "verify")
    finally:
        os.close(lock)


def _open_synced(path: Path, domain: str | None, credentials: dict[str, str] | None
                 ) -> tuple[Any, Any, int, str]:
    """(engine, keys, tenant id, domain) of a file holding a complete sync of `domain` (any, when None)."""
    engine, keys = _open_store(path)
    with make_session_factory(engine)() as s:
        tenants = list_tenants(s)
        name = tenant_name(domain) if domain else None
        tenant = next((t for t in tenants if name in (None, t.name)), None)
        if tenant is None and tenants:
            raise EmbeddedError(f"{path} holds a sync of {tenants[0].name}, not {name}; give the --domain it "
                                "was synced with, or the --file of that org")
        if tenant is None or tenant.current_run_id is None:
            raise EmbeddedError(f"{path} holds no complete sync: nothing to verify; sync it first "
                                f"(oktasync --domain {domain or 'DOMAIN'} --file {path})")
        found = (tenant.id, tenant.domain)
        if credentials:
            update_tenant(s, tenant.id, credentials=credentials, keys=keys)
            s.commit()
    return engine, keys, *found


def _check_limits(concurrency: int, rate_limit_share: float) -> None:
    if concurrency < 1:
        raise EmbeddedError("--concurrency must be at least 1")
    if not 0 < rate_limit_share <= 1:
        raise EmbeddedError("--rate-limit-share must be in (0, 1]")


def _hold_file_lock(path: Path) -> int:
    """An exclusive lock on `<file>.lock` while this sync runs (the kernel drops it when the process
    dies): a second sync into the same file is refused instead of discarding the first one's run."""
    try:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise EmbeddedError(f"cannot create the lock file {path}.lock ({exc.strerror}); give --file a path in a "
                            "directory you can write") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise EmbeddedError(f"another oktasync (pid {other}) is syncing into {path}; wait for it to finish, "
                            "or use another --file") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _sync_prepared(domain: str, path: Path, engine: Any, keys: Any, tenant_id: int, concurrency: int,
                   rate_limit_share: float, on_progress: Callable[[Progress], None] | None, progress_every: float,
                   stall_timeout: float, kind: str,
                   on_event: Callable[[str, dict[str, Any]], None] | None = None) -> EmbeddedResult:
    sessions = make_session_factory(engine)
    progress = Progress()

    def events(kind: str, data: dict[str, Any]) -> None:
        progress.on_event(kind, data)
        if on_event is not None:
            on_event(kind, data)
    limiter = memory_limiter(rate_limit_share, max_in_flight=concurrency)
    with sessions() as s:
        # What the last run learned of the org's buckets: a run minutes later need not wait for
        # Okta's first answers before it sends more than one request to each bucket.
        limiter.restore(limiter_key(tenant_id), load_limiter_state(s, tenant_id))
    handlers: dict[str, Callable[..., Any]] = {}
    sender = InProcessSender(handlers, concurrency)
    read_ahead = ReadAhead(concurrency, limit=concurrency * 4)
    rt = Runtime(sessions=sessions, sender=sender, make_tenant=tenant_factory(limiter, keys=keys),
                 tenant_max_streams=max(2, concurrency * 2), global_max_streams=max(2, concurrency * 2),
                 countdown_cap=30.0, stall_timeout=stall_timeout, events=events, read_ahead=read_ahead)
    handlers.update({steps.START: lambda run_id: steps.start_run(rt, run_id),
                     steps.PAGE: lambda sid, cursor: steps.page(rt, sid, cursor),
                     steps.FINALIZE: lambda run_id: steps.finalize(rt, run_id)})
    with sessions() as s:
        old = runs.active_run(s, tenant_id)
        old_id = old.id if old else None
    if old_id is not None:  # we hold the file's lock, so the process that ran it died: discard its data
        steps.fail_run(rt, old_id, "interrupted (the process that ran it stopped)")
    with sessions() as s:
        runs.begin_write(s)
        # Asked for incremental, a run is one when the file's cursor allows (its start decides and says why not).
        run_id = runs.create_run(s, tenant_id, kind)
        s.commit()
    if run_id is None:
        raise EmbeddedError(f"another sync of {tenant_name(domain)} is running on {path}")
    started = time.monotonic()
    sender.enqueue(steps.START, [run_id])
    try:
        _wait(rt, sender, run_id, progress, on_progress, progress_every)
    except KeyboardInterrupt:
        sender.close()
        steps.fail_run(rt, run_id, "interrupted (Ctrl-C)")
        raise
    finally:
        sender.close()
        read_ahead.close()
    with sessions() as s:
        runs.begin_write(s)
        save_limiter_state(s, tenant_id, limiter.snapshot(limiter_key(tenant_id)))
        s.commit()
        run = s.get(SyncRun, run_id, populate_existing=True)
        assert run is not None
        result = EmbeddedResult(run_id, run.state, run.error, dict(run.counts or {}), list(run.warnings or []),
                                time.monotonic() - started, progress, str(path), kind=run.kind,
                                reason=(run.plan or {}).get("reason"))
    if hasattr(limiter, "stats"):
        try:
            result.limiter_stats = dict(limiter.stats())
        except Exception:  # noqa: BLE001 - stats are decoration
            pass
    engine.dispose()
    return result


def _wait(rt: Runtime, sender: InProcessSender, run_id: int, progress: Progress,
          on_progress: Callable[[Progress], None] | None, every: float) -> str:
    last_shown = 0.0
    idle_checks = 0
    while True:
        sender.wait_idle(timeout=min(every, 0.5))
        with rt.sessions() as s:
            run_state = runs.run_state(s, run_id)
        if run_state in TERMINAL:
            if on_progress:
                on_progress(progress)
            return run_state
        if sender.errors:
            task, exc = sender.errors[0]
            steps.fail_run(rt, run_id, f"internal error in {task}: {type(exc).__name__}: {exc}")
            continue
        if sender.idle:
            # Nothing queued, scheduled or running, yet the run is open: a lost step. Let the
            # reaper's logic re-drive it; if that finds nothing to do twice, the run is stuck.
            idle_checks += 1
            steps.release(rt)
            steps.complete(rt, run_id)
            if idle_checks > 3 and sender.idle:
                steps.fail_run(rt, run_id, "the sync stopped making progress (no work left, run still open)")
        else:
            idle_checks = 0
        now = time.monotonic()
        if on_progress and now - last_shown >= every:
            last_shown = now
            on_progress(progress)
