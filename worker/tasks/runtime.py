"""The per-process engine runtime of a Celery worker (built lazily, after the prefork fork)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from worker.config import Settings
from worker.engine.dispatch import CeleryDispatcher
from worker.engine.runtime import Runtime

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, Any] = {}


def limiter_shares(sync_share: float) -> dict[str, float]:
    """The sync's share of each bucket; provisioning keeps the rest."""
    rest = round(1.0 - sync_share, 6)
    return {"sync": sync_share, "provisioning": rest} if rest > 0 else {"sync": sync_share}


def make_limiter(settings: Settings, redis_client: Any) -> Any:
    """The shared Redis limiter (worker/okta/ratelimit), or None if that module is not there yet."""
    try:
        from worker.okta.ratelimit import LimiterConfig, RedisLimiter
    except ImportError:
        log.warning("worker.okta.ratelimit has no RedisLimiter: syncing without the shared rate limiter")
        return None
    config = LimiterConfig(shares=limiter_shares(settings.rate_limit_share), max_in_flight=settings.max_in_flight)
    return RedisLimiter(redis_client, config)


def redis_client(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.redis_url)


def get_runtime(app: Any) -> Runtime:
    """This process's Runtime (a new one in each forked child)."""
    pid = os.getpid()
    with _lock:
        if _state.get("pid") == pid:
            return _state["runtime"]
        from worker.engine.tenant_client import tenant_factory
        from worker.store.db import make_engine, make_session_factory

        settings: Settings = app.conf.oktasync_settings
        engine = make_engine(settings.database_url)
        rclient = redis_client(settings)
        rt = Runtime(
            sessions=make_session_factory(engine),
            dispatcher=CeleryDispatcher(app),
            make_tenant=tenant_factory(make_limiter(settings, rclient)),
            tenant_max_streams=settings.tenant_max_streams,
            global_max_streams=settings.global_max_streams,
            countdown_cap=settings.countdown_cap,
            stall_timeout=settings.stall_timeout,
            run_stall_factor=settings.run_stall_factor,
            max_redeliveries=settings.max_redeliveries,
        )
        _state.update(pid=pid, runtime=rt, redis=rclient, settings=settings)
        return rt


def deliveries(app: Any, task_id: str | None) -> int:
    """Count this delivery of a task message (Redis INCR with a TTL); 1 on the first delivery."""
    if not task_id:
        return 1
    get_runtime(app)
    settings: Settings = _state["settings"]
    key = f"oktasync:deliveries:{task_id}"
    pipe = _state["redis"].pipeline()
    pipe.incr(key)
    pipe.expire(key, int(settings.visibility_timeout * (settings.max_redeliveries + 2)))
    count, _ = pipe.execute()
    return int(count)
