"""How the engine enqueues its next step: on Celery, or in this process (embedded mode).

The engine's steps (worker/engine/steps.py) never call Celery directly; they call
`dispatcher.enqueue(task_name, args, countdown)`. `CeleryDispatcher` publishes a message (routed by
the task name), `InProcessDispatcher` runs the same step on a thread pool, with a timer heap for
countdowns. Both deliver at least once and never block the caller.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None) -> None: ...


class CeleryDispatcher:
    """Publish the step as a Celery message; routing (sync/provisioning queue) is by name."""

    def __init__(self, app: Any):
        self.app = app

    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None) -> None:
        options: dict[str, Any] = {}
        if countdown and countdown > 0:
            options["countdown"] = countdown
        self.app.send_task(task, args=list(args), **options)


class InProcessDispatcher:
    """A thread pool plus a timer heap: the embedded mode's broker.

    `handlers` maps task names to callables taking the task's args. `wait_idle()` returns when
    nothing is queued, scheduled or running, which is how the embedded runner notices a run that
    can make no more progress. An exception escaping a handler is kept in `errors` (the engine
    catches its own failures; this only catches bugs) and reported through `on_error`.
    """

    def __init__(self, handlers: dict[str, Callable[..., Any]], concurrency: int,
                 on_error: Callable[[str, BaseException], None] | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.handlers = handlers
        self.on_error = on_error
        self.errors: list[tuple[str, BaseException]] = []
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oktasync")
        self._timers: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._outstanding = 0  # submitted or scheduled and not yet finished
        self._closed = False
        self._timer_thread = threading.Thread(target=self._timer_loop, name="oktasync-timers", daemon=True)
        self._timer_thread.start()

    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None) -> None:
        if task not in self.handlers:
            raise KeyError(f"no in-process handler for task {task!r}")
        with self._cond:
            if self._closed:
                return
            self._outstanding += 1
            if countdown and countdown > 0:
                heapq.heappush(self._timers, (time.monotonic() + countdown, next(self._seq), task, tuple(args)))
                self._cond.notify_all()
                return
        self._submit(task, tuple(args))

    def _submit(self, task: str, args: tuple[Any, ...]) -> None:
        try:
            self._pool.submit(self._run, task, args)
        except RuntimeError:  # pool shut down
            self._done()

    def _run(self, task: str, args: tuple[Any, ...]) -> None:
        try:
            self.handlers[task](*args)
        except BaseException as exc:  # noqa: BLE001 - reported, never lost silently
            log.exception("in-process task %s failed", task)
            self.errors.append((task, exc))
            if self.on_error:
                try:
                    self.on_error(task, exc)
                except Exception:  # noqa: BLE001
                    log.exception("error handler failed")
        finally:
            self._done()

    def _done(self) -> None:
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def _timer_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._timers or self._timers[0][0] > time.monotonic()):
                    timeout = (self._timers[0][0] - time.monotonic()) if self._timers else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _due, _seq, task, args = heapq.heappop(self._timers)
            self._submit(task, args)

    def next_timer_in(self) -> float | None:
        with self._cond:
            return (self._timers[0][0] - time.monotonic()) if self._timers else None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued, scheduled or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._outstanding > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._outstanding == 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._timers.clear()
            self._cond.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
