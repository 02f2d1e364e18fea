"""A Celery app for test_delivery_counter.py's real worker: the redelivery guard of OktasyncTask
around a task that kills its own pool process (kill -9) on every delivery, and one that returns.
The worker is `celery -A tests.engine.poison_app worker`; POISON_REDIS_URL is broker and counter
store. The tasks record into Redis lists what the test reads: whether each run was redelivered,
and the count give_up was called with."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace
from typing import Any

import redis
from celery import Celery

from worker.tasks.base import OktasyncTask

MAX_REDELIVERIES = 3
RUNS = "poison:runs"
GIVEN_UP = "poison:given-up"

# Set by the test for the worker; the test process itself sends through its own connection.
REDIS_URL = os.environ.get("POISON_REDIS_URL", "redis://unset-POISON_REDIS_URL:1/0")
client = redis.Redis.from_url(REDIS_URL)
settings = SimpleNamespace(visibility_timeout=900.0, max_redeliveries=MAX_REDELIVERIES)

app = Celery("poison", broker=REDIS_URL, set_as_current=False)
app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                task_ignore_result=True, task_default_queue="poison",
                broker_connection_retry_on_startup=True)


class Guarded(OktasyncTask):
    abstract = True

    @property
    def runtime(self) -> Any:  # the real one needs a database; the guard only uses these two
        return SimpleNamespace(redis=client, settings=settings)

    def give_up(self, args: tuple[Any, ...], kwargs: dict[str, Any], deliveries: int) -> None:
        client.rpush(GIVEN_UP, deliveries)


def _record_run(task: Guarded) -> None:
    redelivered = bool((task.request.delivery_info or {}).get("redelivered"))
    keys = client.keys("oktasync:deliveries:*")
    client.rpush(RUNS, f"{task.name} redelivered={redelivered} keys={len(keys)}")


@app.task(base=Guarded, bind=True, name="poison.die")
def die(self) -> None:
    _record_run(self)
    os.kill(os.getpid(), signal.SIGKILL)  # the pool process dies mid-task, as a poison message does


@app.task(base=Guarded, bind=True, name="poison.ok")
def ok(self) -> None:
    _record_run(self)
