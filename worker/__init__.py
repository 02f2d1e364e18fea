"""oktasync worker package. `celery -A worker` finds the Celery app as `worker.celery`.

The app is imported lazily so that importing `worker.model` or the CLI does not build it.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "celery":
        from worker.app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
