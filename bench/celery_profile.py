"""A Celery app for `tenants_cost.py page --celery --profile`: worker.app with cProfile (on process
CPU time) in the worker's main process (from `worker_ready` to shutdown) and in its pool child
(from its start to each finalize task): stats files $BENCH_PROFILE_OUT.parent and .child."""

from __future__ import annotations

import cProfile
import os
import time
from typing import Any

from celery import signals

from worker.app import app  # noqa: F401  (the app `celery -A celery_profile` runs)

OUT = os.environ.get("BENCH_PROFILE_OUT", "/tmp/celery_profile")
_profiles: dict[str, cProfile.Profile] = {}


def _start(which: str) -> None:
    profile = cProfile.Profile(time.process_time)
    _profiles[which] = profile
    profile.enable()


def _dump(which: str) -> None:
    profile = _profiles.get(which)
    if profile is not None:
        profile.disable()
        profile.dump_stats(f"{OUT}.{which}")
        profile.enable()


def _after_task(task: Any = None, **_: Any) -> None:
    if getattr(task, "name", "") == "oktasync.sync.finalize":
        _dump("child")  # the run is over: what the child did for it


signals.worker_process_init.connect(lambda **_: _start("child"), weak=False)
signals.task_postrun.connect(_after_task, weak=False)
signals.worker_ready.connect(lambda **_: _start("parent"), weak=False)
signals.worker_shutdown.connect(lambda **_: _dump("parent"), weak=False)
