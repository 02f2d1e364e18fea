"""Settings of the worker, Beat and metrics processes, read from the environment (OKTASYNC_*).

One frozen dataclass so every process (worker, beat, CLI) derives the same values, and a
`check()` that refuses orderings that would duplicate work: a task's hard time limit must stay
below the broker's visibility timeout (or Redis hands a still-running task to another worker),
and any countdown we schedule must stay well below it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _env_float(name, default, minimum=minimum)
    if value != int(value):
        raise ConfigError(f"{name}={value!r} must be a whole number")
    return int(value)


@dataclass(frozen=True)
class Settings:
    broker_url: str = "redis://127.0.0.1:6379/0"
    # Rate limiter and delivery counters; a separate DB from the broker is advisable in production.
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///oktasync.db"
    # Seconds before Redis re-delivers a message a worker took but did not acknowledge.
    visibility_timeout: float = 900.0
    # Seconds without a heartbeat after which the reaper re-enqueues an active stream, and after
    # `stall_timeout * run_stall_factor` without any progress it fails the run.
    stall_timeout: float = 300.0
    run_stall_factor: float = 4.0
    # Beat tick of the dispatcher (claims due tenants, releases pending streams, reaps).
    dispatch_interval: float = 5.0
    # Fairness: at most this many streams of one tenant active at once, and across all tenants.
    tenant_max_streams: int = 8
    global_max_streams: int = 256
    # Admission: sync runs active at once across the cluster (due tenants beyond it wait, oldest
    # due first). 0: global_max_streams // tenant_max_streams, so every admitted run can crawl its
    # full share of lists and a page's release never finds the global cap scarce.
    max_runs: int = 0
    # Deliveries of one task message (redeliveries after a worker died) before it is given up.
    max_redeliveries: int = 5
    # Share of each Okta rate-limit bucket a sync may use, and requests in flight per tenant.
    rate_limit_share: float = 0.8
    max_in_flight: int = 8
    # Page tasks wait for the limiter by re-enqueueing with at most this countdown (seconds).
    max_countdown: float = field(default=60.0)
    # Log lines: "text" or "json" (one object per line); Celery's own received/succeeded lines
    # are quieted unless `log_celery_task_lines` (oktasync logs one line per task itself).
    log_format: str = "text"
    log_celery_task_lines: bool = False
    # Provisioning: seconds after which a `running` request whose worker stopped renewing it may be
    # taken over (0: the task's hard time limit + 5 s, since no attempt outlives it); limiter waits
    # up to `provision_inline_wait` are slept in the task (capped at a third of its soft time
    # limit); transient failures allowed per request and their backoff.
    provision_lease: float = 0.0
    provision_inline_wait: float = 30.0
    provision_max_retries: int = 5
    provision_retry_base: float = 2.0
    provision_retry_cap: float = 60.0
    # Database connections each worker process keeps open (as many again may be opened for a
    # burst). 0: from the worker's pool: 2 in a prefork or solo child, which runs one task at a
    # time (a task holds one connection, two while it fails a run inside a read); concurrency + 1
    # in a threads, gevent or eventlet pool, whose tasks run side by side.
    db_pool_size: int = 0
    # Task events (Flower) are sent in batches at most this many seconds apart (or every 24 events)
    # by a worker's main process; 0: Celery's own way, one publish per event loop turn (nearly one
    # Redis PUBLISH per event).
    event_flush_interval: float = 0.5

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json"

    @property
    def run_bound(self) -> int:
        return self.max_runs or max(1, self.global_max_streams // self.tenant_max_streams)

    @property
    def task_time_limit(self) -> float:
        # Hard limit: well under the visibility timeout, so a running task is never re-delivered.
        return max(10.0, min(300.0, self.visibility_timeout * 0.5))

    @property
    def task_soft_time_limit(self) -> float:
        return self.task_time_limit * 0.8

    @property
    def lease_seconds(self) -> float:
        return self.provision_lease or self.task_time_limit + 5

    @property
    def provision_wait(self) -> float:
        return min(self.provision_inline_wait, self.task_soft_time_limit / 3)

    @property
    def countdown_cap(self) -> float:
        # Countdown messages sit unacked in a worker; keep them far below the visibility timeout.
        return max(0.5, min(self.max_countdown, self.visibility_timeout / 4))

    def pool_size_for(self, pool: str, concurrency: int) -> int:
        """Connections to keep in a worker process whose Celery pool is `pool` (its name or class)
        running `concurrency` tasks at once."""
        if self.db_pool_size:
            return self.db_pool_size
        side_by_side = any(kind in pool.lower() for kind in ("thread", "gevent", "eventlet"))
        return concurrency + 1 if side_by_side else 2

    def check(self) -> Settings:
        if self.task_time_limit >= self.visibility_timeout:
            raise ConfigError(
                f"OKTASYNC_VISIBILITY_TIMEOUT={self.visibility_timeout:g} is too small: it must exceed "
                f"the task time limit ({self.task_time_limit:g}s); use at least 20")
        if self.stall_timeout <= 0:
            raise ConfigError("OKTASYNC_STALL_TIMEOUT must be positive")
        if not 0 < self.rate_limit_share <= 1:
            raise ConfigError(f"OKTASYNC_RATE_LIMIT_SHARE={self.rate_limit_share:g} must be in (0, 1]")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"OKTASYNC_LOG_FORMAT={self.log_format!r} must be text or json")
        if self.tenant_max_streams < 1 or self.global_max_streams < 1:
            raise ConfigError("OKTASYNC_TENANT_MAX_STREAMS and OKTASYNC_GLOBAL_MAX_STREAMS must be >= 1")
        return self


# Read on their own by processes that need nothing else (the CLI, the embedded mode): a bad
# worker setting must not stop `oktasync db upgrade` or `oktasync grants`.
DATABASE_URL_VAR = "OKTASYNC_DATABASE_URL"
SECRET_KEY_VAR = "OKTASYNC_SECRET_KEY"


def database_url() -> str:
    """$OKTASYNC_DATABASE_URL, else ./oktasync.db."""
    return _env_str(DATABASE_URL_VAR, Settings.database_url)


def secret_key() -> str | None:
    """$OKTASYNC_SECRET_KEY (comma-separated Fernet keys, newest first), if set."""
    return os.environ.get(SECRET_KEY_VAR)


def load() -> Settings:
    """Settings from the environment, checked."""
    broker = _env_str("OKTASYNC_BROKER_URL", Settings.broker_url)
    return Settings(
        broker_url=broker,
        redis_url=_env_str("OKTASYNC_REDIS_URL", broker),
        database_url=database_url(),
        visibility_timeout=_env_float("OKTASYNC_VISIBILITY_TIMEOUT", Settings.visibility_timeout, minimum=1),
        stall_timeout=_env_float("OKTASYNC_STALL_TIMEOUT", Settings.stall_timeout, minimum=0.1),
        run_stall_factor=_env_float("OKTASYNC_RUN_STALL_FACTOR", Settings.run_stall_factor, minimum=1),
        dispatch_interval=_env_float("OKTASYNC_DISPATCH_INTERVAL", Settings.dispatch_interval, minimum=0.2),
        tenant_max_streams=_env_int("OKTASYNC_TENANT_MAX_STREAMS", Settings.tenant_max_streams, minimum=1),
        global_max_streams=_env_int("OKTASYNC_GLOBAL_MAX_STREAMS", Settings.global_max_streams, minimum=1),
        max_runs=_env_int("OKTASYNC_MAX_RUNS", Settings.max_runs),
        max_redeliveries=_env_int("OKTASYNC_MAX_REDELIVERIES", Settings.max_redeliveries, minimum=1),
        rate_limit_share=_env_float("OKTASYNC_RATE_LIMIT_SHARE", Settings.rate_limit_share),
        max_in_flight=_env_int("OKTASYNC_MAX_IN_FLIGHT", Settings.max_in_flight, minimum=1),
        max_countdown=_env_float("OKTASYNC_MAX_COUNTDOWN", Settings.max_countdown, minimum=0.1),
        log_format=_env_str("OKTASYNC_LOG_FORMAT", Settings.log_format).lower(),
        log_celery_task_lines=_env_str("OKTASYNC_LOG_CELERY_TASK_LINES", "0").lower() in ("1", "true", "yes"),
        provision_lease=_env_float("OKTASYNC_PROVISION_LEASE", Settings.provision_lease),
        provision_inline_wait=_env_float("OKTASYNC_PROVISION_INLINE_WAIT", Settings.provision_inline_wait),
        provision_max_retries=_env_int("OKTASYNC_PROVISION_MAX_RETRIES", Settings.provision_max_retries),
        provision_retry_base=_env_float("OKTASYNC_PROVISION_RETRY_BASE", Settings.provision_retry_base),
        provision_retry_cap=_env_float("OKTASYNC_PROVISION_RETRY_CAP", Settings.provision_retry_cap),
        db_pool_size=_env_int("OKTASYNC_DB_POOL_SIZE", Settings.db_pool_size),
        event_flush_interval=_env_float("OKTASYNC_EVENT_FLUSH_INTERVAL", Settings.event_flush_interval),
    ).check()
