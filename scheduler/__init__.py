"""Beat for oktasync: `celery -A scheduler beat`.

Beat has one entry (worker/app.py `beat_schedule`) that ticks `oktasync.sync.dispatch` every few
seconds; the dispatcher (scheduler/dispatch.py) reads tenants' schedules from the database, so
tenants added, changed, paused or removed are picked up without restarting Beat.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from worker.app import app

        return app
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
