"""The redelivery guard's Redis counter: one key per message while it may still come back, none
left once the task has run (each message used to leave a key for the counter's whole TTL)."""

from __future__ import annotations

from types import SimpleNamespace

import redis
from celery import Celery

from worker.tasks.base import OktasyncTask


def _app_with_task(redis_url: str, seen: list[int]):
    client = redis.Redis.from_url(redis_url)
    settings = SimpleNamespace(visibility_timeout=900.0, max_redeliveries=3)

    class Task(OktasyncTask):
        abstract = True

        @property
        def runtime(self):  # the real one needs a database; the guard only uses these two
            return SimpleNamespace(redis=client, settings=settings)

    app = Celery("t", broker="memory://", set_as_current=False)

    @app.task(base=Task, bind=True, name="t.count")
    def count(self, fail: bool = False) -> None:
        seen.extend(int(v) for v in client.mget(client.keys("oktasync:deliveries:*")) if v)
        if fail:
            raise ValueError("boom")

    return count, client


def test_the_delivery_counter_is_kept_while_running_and_dropped_once_the_task_ran(redis_url):
    seen: list[int] = []
    task, client = _app_with_task(redis_url, seen)
    task.apply()
    task.apply(kwargs={"fail": True})  # a failure is acknowledged too
    assert seen == [1, 1]  # counted during the run
    assert client.keys("oktasync:deliveries:*") == []


def test_a_message_delivered_too_often_is_given_up_and_its_counter_dropped(redis_url):
    seen: list[int] = []
    task, client = _app_with_task(redis_url, seen)
    client.set("oktasync:deliveries:lost-worker:0", 3)  # three workers died running it
    result = task.apply(task_id="lost-worker")
    assert result.successful() and seen == []  # give_up, the task body did not run
    assert client.keys("oktasync:deliveries:*") == []
