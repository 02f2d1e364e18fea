"""How the engine enqueues its next step: on Celery, or in this process (embedded mode).

The engine's steps (worker/engine/steps.py) never call Celery directly; they call
`sender.enqueue(task_name, args, countdown, priority)`. `CelerySender` publishes a message
(routed by the task name), `InProcessSender` runs the same step on a pool of threads, with a
timer heap for countdowns. Both deliver at least once and never block the caller.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


# Priorities: lower runs first. A list already being crawled goes before a new one: its pages
# are sequential (Okta's cursor), so the wait of each of its pages adds up along the sync's
# critical path (the 100 pages of a 20,000-user list), while a new list can start a little later.
IN_PROGRESS = 0
NEW_LIST = 1


class Sender(Protocol):
    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None,
                priority: int = IN_PROGRESS) -> None: ...


class CelerySender:
    """Publish the step as a Celery message; routing (sync/provisioning queue) is by name.

    `priority` is not sent: kombu's Redis transport implements priorities as extra lists per
    queue, which would hide work from the queue-length metrics; across many tenants the per-tenant
    stream cap already interleaves the work."""

    def __init__(self, app: Any):
        self.app = app

    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None,
                priority: int = IN_PROGRESS) -> None:
        options: dict[str, Any] = {}
        if countdown and countdown > 0:
            options["countdown"] = countdown
        self.app.send_task(task, args=list(args), **options)


class InProcessSender:
    """`concurrency` worker threads taking steps from a priority queue, plus countdowns: the
    embedded mode's broker.

    Ready steps run lowest `priority` first, then in the order they became ready. `handlers`
    maps task names to callables taking the task's args. `wait_idle()` returns when nothing is
    queued, scheduled or running, which is how the embedded runner notices a run that can make no
    more progress. An exception escaping a handler is kept in `errors` (the engine catches its own
    failures; this only catches bugs) and reported through `on_error`.
    """

    def __init__(self, handlers: dict[str, Callable[..., Any]], concurrency: int,
                 on_error: Callable[[str, BaseException], None] | None = None):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.handlers = handlers
        self.on_error = on_error
        self.errors: list[tuple[str, BaseException]] = []
        self._ready: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._timers: list[tuple[float, int, int, str, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._outstanding = 0  # queued, scheduled or running
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"oktasync-{i}", daemon=True)
                         for i in range(concurrency)]
        for t in self._threads:
            t.start()

    def enqueue(self, task: str, args: Sequence[Any], countdown: float | None = None,
                priority: int = IN_PROGRESS) -> None:
        if task not in self.handlers:
            raise KeyError(f"no in-process handler for task {task!r}")
        with self._cond:
            if self._closed:
                return
            self._outstanding += 1
            if countdown and countdown > 0:
                heapq.heappush(self._timers, (time.monotonic() + countdown, next(self._seq), priority, task,
                                              tuple(args)))
            else:
                heapq.heappush(self._ready, (priority, next(self._seq), task, tuple(args)))
            self._cond.notify()

    def _next(self) -> tuple[str, tuple[Any, ...]] | None:
        """The next step to run (None once closed); due countdowns join the ready queue first."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _due, seq, priority, task, args = heapq.heappop(self._timers)
                    heapq.heappush(self._ready, (priority, seq, task, args))
                if self._ready:
                    _priority, _seq, task, args = heapq.heappop(self._ready)
                    return task, args
                self._cond.wait((self._timers[0][0] - now) if self._timers else None)
            return None

    def _work(self) -> None:
        while (step := self._next()) is not None:
            self._run(*step)

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
            with self._cond:
                self._outstanding -= 1
                self._cond.notify_all()

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
        """Drop what is queued or scheduled, let running steps finish, stop the threads."""
        with self._cond:
            self._closed = True
            self._outstanding -= len(self._ready) + len(self._timers)
            self._ready.clear()
            self._timers.clear()
            self._cond.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join()
