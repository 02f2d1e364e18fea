"""Celery signal handlers that give every oktasync process its logs and counters.

Imported once by worker/app.py. On logging setup (worker, Beat) every handler gets the redacting
formatter (text, or JSON with OKTASYNC_LOG_FORMAT=json). Around each task we log ONE line:

    task oktasync.sync.page SUCCESS 0.084s id=... tenant_id=3 run_id=12 stream_id=45

(Celery's own "received"/"succeeded" lines are quieted to WARNING to keep it one line; set
OKTASYNC_LOG_CELERY_TASK_LINES=1 to keep them.) While a task runs, JSON lines carry the same ids.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import current_app, signals

from worker.config import Settings
from worker.observability import logs
from worker.observability.taskinfo import describe

log = logging.getLogger("oktasync.task")

# Celery loggers that write one line each when a task is received and when it ends.
CELERY_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")

_started: dict[str, float] = {}


def _install_logging(logger: logging.Logger | None = None, **_: Any) -> None:
    settings = getattr(current_app.conf, "oktasync_settings", None) or Settings()
    logs.install(logging.getLogger(), settings.json_logs)
    if logger is not None:
        logs.install(logger, settings.json_logs)
    if not settings.log_celery_task_lines:
        for name in CELERY_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def _app_settings(task: Any) -> Any:
    """The oktasync Settings of the task's app (None for other Celery apps, e.g. in tests)."""
    app = getattr(task, "app", None)
    return getattr(app.conf, "oktasync_settings", None) if app is not None else None


def _prerun(task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    try:
        if task_id:
            _started[task_id] = time.monotonic()
        settings = _app_settings(task)
        ctx = describe(getattr(task, "name", "?"), list(args or []), dict(kwargs or {}), settings)
        ctx = {"task": getattr(task, "name", "?"), "task_id": task_id, **ctx}
        logs.task_context.set(ctx)
    except Exception:  # noqa: BLE001 - observability must never stop a task
        logging.getLogger(__name__).debug("task context failed", exc_info=True)


def _postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    try:
        started = _started.pop(task_id, None) if task_id else None
        ctx = logs.task_context.get() or {}
        runtime = time.monotonic() - started if started is not None else None
        ids = " ".join(f"{k}={v}" for k, v in ctx.items() if k not in ("task", "task_id") and v is not None)
        log.info("task %s %s %s id=%s%s", getattr(task, "name", "?"), state or "?",
                 f"{runtime:.3f}s" if runtime is not None else "-", task_id, f" {ids}" if ids else "",
                 extra={"task_state": state, "runtime": round(runtime, 6) if runtime is not None else None})
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).debug("task line failed", exc_info=True)
    finally:
        logs.task_context.set(None)


def _show_owner(sender: Any = None, body: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Before a message is published: put the tenant and run it is about in its `kwargsrepr` (our
    tasks take ids as positional args and no kwargs), so Flower's task list shows and searches by
    tenant. A display string only: the task still gets its real arguments."""
    try:
        name = str(sender or "")
        if headers is None or not name.startswith("oktasync.") or not isinstance(body, (tuple, list)):
            return
        args, kwargs = list(body[0] or []), dict(body[1] or {})
        owner = {k: v for k, v in describe(name, args, kwargs, getattr(current_app.conf, "oktasync_settings", None))
                 .items() if k in ("tenant_id", "tenant", "run_id") and v is not None}
        if owner and not kwargs:
            headers["kwargsrepr"] = repr(owner)
    except Exception:  # noqa: BLE001 - a label must never stop a publish
        logging.getLogger(__name__).debug("task owner label failed", exc_info=True)


def connect() -> None:
    """Connect the handlers (idempotent: Celery's signals dedupe by dispatch_uid)."""
    signals.after_setup_logger.connect(_install_logging, weak=False, dispatch_uid="oktasync-logs")
    signals.after_setup_task_logger.connect(_install_logging, weak=False, dispatch_uid="oktasync-task-logs")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="oktasync-prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="oktasync-postrun")
    signals.before_task_publish.connect(_show_owner, weak=False, dispatch_uid="oktasync-owner")


connect()
