"""Celery tasks of the sync engine: thin wrappers around worker/engine/steps.py.

Arguments are ids and cursors only (never credentials). Every task counts its deliveries: with
`acks_late` + `task_reject_on_worker_lost`, a message whose execution kills the worker comes back;
after `OKTASYNC_MAX_REDELIVERIES` deliveries its run is failed instead of looping forever.
"""

from __future__ import annotations

import logging
from typing import Any

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


@app.task(name=steps.START, bind=True)
def start(self: Any, run_id: int) -> None:
    if _guarded(self, steps.START, [run_id]):
        steps.start_run(get_runtime(app), run_id)


@app.task(name=steps.PAGE, bind=True)
def page(self: Any, stream_id: int, cursor: str) -> None:
    if _guarded(self, steps.PAGE, [stream_id, cursor]):
        steps.page(get_runtime(app), stream_id, cursor)


# The finalizer merges a whole run in one transaction: give it most of the visibility timeout
# (never all of it, or Redis would hand it to a second worker while it still runs).
_settings = app.conf.oktasync_settings


@app.task(name=steps.FINALIZE, bind=True, time_limit=_settings.visibility_timeout * 0.9,
          soft_time_limit=_settings.visibility_timeout * 0.85)
def finalize(self: Any, run_id: int) -> None:
    if _guarded(self, steps.FINALIZE, [run_id]):
        steps.finalize(get_runtime(app), run_id)
