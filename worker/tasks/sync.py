"""Celery tasks of the sync engine: thin wrappers around worker/engine/steps.py.

Arguments are ids and cursors only (never credentials). Every task counts its deliveries: with
`acks_late` + `task_reject_on_worker_lost`, a message whose execution kills the worker comes back;
after `OKTASYNC_MAX_REDELIVERIES` deliveries its run is failed instead of looping forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from worker.app import app
from worker.engine import steps
from worker.tasks.runtime import deliveries, get_runtime

log = logging.getLogger(__name__)


def _guarded(task: Any, name: str, args: list[Any]) -> bool:
    """False (and the run failed) when this message was delivered too many times."""
    rt = get_runtime(app)
    count = deliveries(app, task.request.id)
    if count > rt.max_redeliveries:
        log.error("task %s %s delivered %s times; giving up", name, args, count)
        steps.give_up(rt, name, args, f"{name} was delivered {count} times without finishing "
                      "(the worker running it died each time)")
        return False
    return True


# A lost database connection (PostgreSQL restarted, connections terminated, SQLite busy) is retried
# soon, in a new message: every step is safe to run again (cursor-conditional updates).
DB_RETRIES = 3


def _database_blip(exc: DBAPIError) -> bool:
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _run(task: Any, name: str, args: list[Any], step: Callable[[], None]) -> None:
    if not _guarded(task, name, args):
        return
    try:
        step()
    except DBAPIError as exc:
        if not _database_blip(exc) or task.request.retries >= DB_RETRIES:
            raise
        countdown = 2.0 ** task.request.retries
        log.warning("task %s %s: database unavailable (%s); retrying in %.0fs",
                    name, args, type(exc.orig or exc).__name__, countdown)
        raise task.retry(countdown=countdown, max_retries=DB_RETRIES) from None


@app.task(name=steps.START, bind=True)
def start(self: Any, run_id: int) -> None:
    _run(self, steps.START, [run_id], lambda: steps.start_run(get_runtime(app), run_id))


@app.task(name=steps.PAGE, bind=True)
def page(self: Any, stream_id: int, cursor: str) -> None:
    _run(self, steps.PAGE, [stream_id, cursor], lambda: steps.page(get_runtime(app), stream_id, cursor))


# The finalizer merges a whole run in one transaction: give it most of the visibility timeout
# (never all of it, or Redis would hand it to a second worker while it still runs).
_settings = app.conf.oktasync_settings


@app.task(name=steps.FINALIZE, bind=True, time_limit=_settings.visibility_timeout * 0.9,
          soft_time_limit=_settings.visibility_timeout * 0.85)
def finalize(self: Any, run_id: int) -> None:
    _run(self, steps.FINALIZE, [run_id], lambda: steps.finalize(get_runtime(app), run_id))
