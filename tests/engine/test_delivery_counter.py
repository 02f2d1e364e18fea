"""The redelivery guard's Redis counter: nothing in Redis for a first delivery, a key per message
while a redelivered one may still come back, none left once the task has run; a message that
kills its worker every time is given up after OKTASYNC_MAX_REDELIVERIES deliveries."""

from __future__ import annotations

import os
import subprocess
import time

import redis

from tests.engine import poison_app
from tests.support.paths import CELERY, ROOT


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_first_delivery_uses_no_counter_key(redis_url, monkeypatch):
    client = redis.Redis.from_url(redis_url)
    monkeypatch.setattr(poison_app, "client", client)
    poison_app.ok.apply()  # eager: not redelivered
    assert [r.decode() for r in client.lrange(poison_app.RUNS, 0, -1)] == ["poison.ok redelivered=False keys=0"]
    assert client.keys("oktasync:deliveries:*") == []


def test_a_message_killing_its_worker_is_given_up_after_max_deliveries(redis_url, tmp_path):
    """Real worker, real kill -9 of the pool process mid-task: kombu puts the message back marked
    `redelivered`, the guard counts from there and gives the message up on delivery max + 1."""
    client = redis.Redis.from_url(redis_url)
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [CELERY, "-A", "tests.engine.poison_app", "worker", "-P", "prefork", "-c", "1", "-Q", "poison",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=str(ROOT), env={**os.environ, "POISON_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)},
        stdout=log, stderr=subprocess.STDOUT)
    try:
        send = poison_app.app.connection_for_write(redis_url)
        poison_app.die.apply_async(connection=send)
        _wait(lambda: client.llen(poison_app.GIVEN_UP) > 0, 60, "the poison message to be given up")
        poison_app.ok.apply_async(connection=send)  # the worker goes on with the next message
        runs = lambda: [r.decode() for r in client.lrange(poison_app.RUNS, 0, -1)]  # noqa: E731
        _wait(lambda: runs()[-1].startswith("poison.ok"), 30, "the next message")
        assert runs() == ["poison.die redelivered=False keys=0",  # first delivery: nothing counted
                          "poison.die redelivered=True keys=1",   # delivery 2
                          "poison.die redelivered=True keys=1",   # delivery 3 = max
                          "poison.ok redelivered=False keys=0"]   # given up: its key dropped
        assert [int(v) for v in client.lrange(poison_app.GIVEN_UP, 0, -1)] == [poison_app.MAX_REDELIVERIES + 1]
        assert client.keys("oktasync:deliveries:*") == []
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        send.release()
    assert "WorkerLostError" in (tmp_path / "worker.log").read_text()
