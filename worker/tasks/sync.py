"""Celery tasks of the sync engine: thin wrappers around worker/engine/steps.py.

Arguments are ids and cursors only (never credentials). The base (worker/tasks/base.py) caps
redeliveries: past `OKTASYNC_MAX_REDELIVERIES` deliveries of one message its run is failed instead
of looping forever, and retries a task whose database connection was lost.
"""

from __future__ import annotations

from typing import Any

from worker.app import app
from worker.engine import steps
from worker.tasks.base import OktasyncTask

# Retries of a task after a lost database connection (then the reaper takes over).
DB_RETRIES = 3


class SyncTask(OktasyncTask):
    abstract = True
    max_retries = DB_RETRIES

    def give_up(self, args: tuple[Any, ...], kwargs: dict[str, Any], deliveries: int) -> None:
        steps.give_up(self.runtime.engine, self.name, list(args),
                      f"{self.name} was delivered {deliveries} times without finishing "
                      "(the worker running it died each time)")


@app.task(name=steps.START, base=SyncTask, bind=True)
def start(self: SyncTask, run_id: int) -> None:
    steps.start_run(self.runtime.engine, run_id)


@app.task(name=steps.PAGE, base=SyncTask, bind=True)
def page(self: SyncTask, stream_id: int, cursor: str) -> None:
    steps.page(self.runtime.engine, stream_id, cursor)


# The finalizer merges a whole run in one transaction: give it most of the visibility timeout
# (never all of it, or Redis would hand it to a second worker while it still runs).
_settings = app.conf.oktasync_settings


@app.task(name=steps.FINALIZE, base=SyncTask, bind=True, time_limit=_settings.visibility_timeout * 0.9,
          soft_time_limit=_settings.visibility_timeout * 0.85)
def finalize(self: SyncTask, run_id: int) -> None:
    steps.finalize(self.runtime.engine, run_id)
