"""Which tenant, run, stream or request a task message is about, from its (id-only) arguments.

Page tasks carry a stream id, start/finalize a run id, provisioning executes a request id; the
tenant and run behind them are looked up once per process and cached (ids never change owner); a
stream's lookup caches the run's next streams too.
Lookups use a small engine of their own (one connection at most) so a slow lookup never takes a
connection the task needs.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from typing import Any

_CACHE_SIZE = 4096
_STREAM_BATCH = 256  # streams cached per stream lookup (a run's next streams)
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
_engine: dict[str, Any] = {}


def _sessions(database_url: str) -> Any:
    pid = os.getpid()
    with _lock:
        if _engine.get("pid") != pid or _engine.get("url") != database_url:
            from worker.store.db import make_engine, make_session_factory

            engine = make_engine(database_url, **({} if database_url.startswith("sqlite")
                                                  else {"pool_size": 1, "max_overflow": 0}))
            _engine.update(pid=pid, url=database_url, sessions=make_session_factory(engine))
            _cache.clear()
        return _engine["sessions"]


def _lookup(kind: str, ident: int, database_url: str) -> dict[str, Any]:
    key = (kind, ident)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    import sqlalchemy as sa

    from worker.store.tables import ProvisioningRequest, SyncRun

    found: dict[str, Any] = {}
    with _sessions(database_url)() as s:
        if kind == "stream":
            # This stream and the run's next ones in one query: a run's child streams are created
            # together and published one by one (each a miss otherwise: a query per page message).
            rows = s.execute(_streams_statement(), {"p_stream": ident}).all()
            owners = {row[0]: {"run_id": row[1], "tenant_id": row[2], "stream": row[3]} for row in rows}
            found = owners.get(ident, {})
            with _lock:
                for sid, owner in owners.items():
                    _cache[("stream", sid)] = owner
        elif kind == "run":
            tenant_id = s.execute(sa.select(SyncRun.tenant_id).where(SyncRun.id == ident)).scalar()
            if tenant_id is not None:
                found = {"tenant_id": tenant_id}
        elif kind == "request":
            row = s.execute(sa.select(ProvisioningRequest.tenant_id, ProvisioningRequest.kind)
                            .where(ProvisioningRequest.id == ident)).first()
            if row:
                found = {"tenant_id": row[0], "kind": row[1]}
    if found:
        with _lock:
            _cache[key] = found
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return found


@functools.cache
def _streams_statement() -> Any:
    """A stream and its run's next streams (built once: building it cost as much as running it)."""
    import sqlalchemy as sa

    from worker.store.tables import SyncRun, SyncStream

    run_id = sa.select(SyncStream.run_id).where(SyncStream.id == sa.bindparam("p_stream")).scalar_subquery()
    return (sa.select(SyncStream.id, SyncStream.run_id, SyncRun.tenant_id, SyncStream.kind)
            .join(SyncRun, SyncRun.id == SyncStream.run_id)
            .where(SyncStream.run_id == run_id, SyncStream.id >= sa.bindparam("p_stream"))
            .order_by(SyncStream.id).limit(_STREAM_BATCH))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def describe(name: str, args: list[Any], kwargs: dict[str, Any], settings: Any = None) -> dict[str, Any]:
    """{"tenant_id", "run_id", "stream_id", "request_id", ...} as far as they apply and are known."""
    first = args[0] if args else None
    out: dict[str, Any] = {}
    if name == "oktasync.sync.page":
        out["stream_id"] = _int(first if first is not None else kwargs.get("stream_id"))
        key = ("stream", out["stream_id"])
    elif name in ("oktasync.sync.start", "oktasync.sync.finalize"):
        out["run_id"] = _int(first if first is not None else kwargs.get("run_id"))
        key = ("run", out["run_id"])
    elif name == "oktasync.provision.execute":
        out["request_id"] = _int(first if first is not None else kwargs.get("request_id"))
        key = ("request", out["request_id"])
    elif name == "oktasync.provision.submit":
        # Names only: the tenant's name and the kind of change (the payload holds ids, not secrets,
        # but it can be long).
        out["tenant"] = str(first if first is not None else kwargs.get("tenant"))[:200]
        kind = args[1] if len(args) > 1 else kwargs.get("kind")
        out["kind"] = str(kind)[:32] if kind is not None else None
        return out
    else:
        return out
    if key[1] is not None and settings is not None and getattr(settings, "database_url", None):
        out.update({k: v for k, v in _lookup(key[0], key[1], settings.database_url).items() if k not in out})
    return {k: out[k] for k in _ORDER if k in out}


# Log lines read best with the owner first.
_ORDER = ("tenant_id", "tenant", "run_id", "stream_id", "stream", "request_id", "kind")
