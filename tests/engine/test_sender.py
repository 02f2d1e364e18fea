"""The embedded mode's broker (InProcessSender): order, countdowns, idleness, errors, close.

Ordering is what keeps a long sequential list (the users list) off the back of the queue: its
next page must run before lists that have not started yet (see bench/RESULTS.md, sync engine)."""

from __future__ import annotations

import threading
import time

import pytest

from worker.engine.sender import IN_PROGRESS, NEW_LIST, InProcessSender


def recording(concurrency: int = 1):
    ran: list[tuple] = []
    gate = threading.Event()

    def step(*args):
        ran.append(args)

    def blocker():
        ran.append(("blocker started",))
        gate.wait(10)
        ran.remove(("blocker started",))
        ran.append(("blocker done",))

    return InProcessSender({"step": step, "block": blocker}, concurrency), ran, gate


def test_work_in_progress_runs_before_new_lists_then_in_arrival_order():
    d, ran, gate = recording()
    d.enqueue("block", [])  # holds the only thread while the rest queue up
    d.enqueue("step", ["new-1"], priority=NEW_LIST)
    d.enqueue("step", ["next-a"])
    d.enqueue("step", ["new-2"], priority=NEW_LIST)
    d.enqueue("step", ["next-b"], priority=IN_PROGRESS)
    gate.set()
    assert d.wait_idle(10)
    assert ran == [("blocker done",), ("next-a",), ("next-b",), ("new-1",), ("new-2",)]
    d.close()


def test_countdowns_run_when_due_and_keep_their_priority():
    d, ran, gate = recording()
    d.enqueue("step", ["later"], countdown=0.3, priority=NEW_LIST)
    d.enqueue("step", ["sooner"], countdown=0.1)
    assert not d.wait_idle(0.05) and ran == []  # scheduled work counts as outstanding
    assert d.wait_idle(10)
    assert ran == [("sooner",), ("later",)]
    # Once due, a countdown queues by its priority like any other step.
    d.enqueue("block", [])
    d.enqueue("step", ["new"], priority=NEW_LIST)
    d.enqueue("step", ["retry"], countdown=0.05)
    time.sleep(0.2)
    gate.set()
    assert d.wait_idle(10)
    assert ran[2:] == [("blocker done",), ("retry",), ("new",)]
    d.close()


def test_steps_run_concurrently_up_to_the_concurrency():
    inside, peak, lock = [0], [0], threading.Lock()

    def step():
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.1)
        with lock:
            inside[0] -= 1

    d = InProcessSender({"step": step}, 3)
    for _ in range(12):
        d.enqueue("step", [])
    assert d.wait_idle(10)
    assert peak[0] == 3
    d.close()


def test_a_failing_step_is_reported_and_the_rest_still_run():
    seen: list[str] = []

    def boom():
        raise RuntimeError("bug")

    d = InProcessSender({"boom": boom, "ok": lambda: seen.append("ok")}, 1,
                            on_error=lambda task, exc: seen.append(f"{task}: {exc}"))
    d.enqueue("boom", [])
    d.enqueue("ok", [])
    assert d.wait_idle(10)
    assert seen == ["boom: bug", "ok"] and [t for t, _ in d.errors] == ["boom"]
    d.close()


def test_unknown_task_is_refused_at_enqueue():
    d, _, _ = recording()
    with pytest.raises(KeyError, match="nope"):
        d.enqueue("nope", [])
    d.close()


def test_close_drops_queued_and_scheduled_work_and_lets_running_steps_finish():
    d, ran, gate = recording()
    d.enqueue("block", [])
    d.enqueue("step", ["queued"])
    d.enqueue("step", ["scheduled"], countdown=30)
    deadline = time.monotonic() + 10
    while ("blocker started",) not in ran and time.monotonic() < deadline:
        time.sleep(0.01)
    threading.Timer(0.1, gate.set).start()
    d.close()  # returns once the running blocker is done
    assert ran == [("blocker done",)] and d.idle
    d.enqueue("step", ["after close"])  # ignored, like a broker that is gone
    assert d.idle and ran == [("blocker done",)]
