"""Task events for Flower: every task's events still arrive, batched into few publishes
(worker/observability/events.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest

from tests.support.paths import CELERY, ROOT
from worker.config import Settings
from worker.observability.events import BatchingConsumer


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeHub:
    def __init__(self) -> None:
        self.later: list[tuple[float, object]] = []
        self.soon: list[object] = []

    def call_later(self, delay, callback):
        self.later.append((delay, callback))
        return FakeTimer()

    def call_soon(self, callback):
        self.soon.append(callback)


class FakeDispatcher:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1


class FakeConf:
    def __init__(self, interval: float) -> None:
        self.oktasync_settings = Settings(event_flush_interval=interval)


def consumer(interval: float) -> BatchingConsumer:
    c = object.__new__(BatchingConsumer)  # only the event paths: no broker, no blueprint
    c.app = type("App", (), {"conf": FakeConf(interval)})()
    c.hub, c.event_dispatcher = FakeHub(), FakeDispatcher()
    c._flush_events_promise = c._flush_events  # what Consumer.__init__ sets
    return c


def test_buffered_events_are_flushed_once_per_interval():
    c = consumer(0.5)
    for _ in range(5):
        c.on_send_event_buffered()
    assert [d for d, _cb in c.hub.later] == [0.5] and not c.hub.soon  # one timer for five events
    assert c.event_dispatcher.flushes == 0
    c.hub.later[0][1]()
    assert c.event_dispatcher.flushes == 1
    c.on_send_event_buffered()  # the next event starts a new interval
    assert len(c.hub.later) == 2


def test_a_stopping_worker_sends_what_it_buffered(monkeypatch):
    from celery.worker.consumer import Consumer

    monkeypatch.setattr(Consumer, "stop", lambda self: None)
    c = consumer(0.5)
    c.on_send_event_buffered()
    timer = c._flush_timer
    c.stop()
    assert c.event_dispatcher.flushes == 1 and timer.cancelled and c._flush_timer is None


def test_interval_zero_is_celerys_own_flush():
    c = consumer(0.0)
    c.on_send_event_buffered()
    assert not c.hub.later and len(c.hub.soon) == 1


def _events(raw: bytes) -> list[dict]:
    envelope = json.loads(raw)
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    decoded = json.loads(body)
    return decoded if isinstance(decoded, list) else [decoded]


@pytest.mark.slow
def test_a_real_worker_sends_every_task_event_in_few_publishes(worker_env, tmp_path, pg_url, redis_url):
    """A `-E` sync worker: each task's received/started/succeeded events reach a subscriber (as
    Flower subscribes), in fewer publishes than events."""
    import redis

    from worker.app import make_app
    from worker.store.migrate import migrate

    migrate(pg_url)
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub()
    sub.psubscribe("*celeryev*")
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([CELERY, "-A", "worker", "worker", "-Q", "sync", "-c", "1", "-E", "--without-gossip",
                             "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
                            env={**worker_env, "OKTASYNC_EVENT_FLUSH_INTERVAL": "5"}, cwd=str(ROOT),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        app = make_app(Settings(broker_url=redis_url, redis_url=redis_url, database_url=pg_url))
        ids = [app.send_task("oktasync.sync.page", args=[10_000 + i, "/api/v1/users"]).id for i in range(10)]
        seen: dict[str, set[str]] = {i: set() for i in ids}
        worker_publishes = 0  # the publisher's own task-sent events go out one by one: not counted
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(len(s) < 3 for s in seen.values()):
            msg = sub.get_message(timeout=1.0)
            if not msg or msg["type"] != "pmessage":
                continue
            # Ours only: pub/sub channels span Redis databases, so parallel tests' workers show too.
            events = [e for e in _events(msg["data"]) if e.get("uuid") in seen
                      and e.get("type", "").startswith("task-") and e["type"] != "task-sent"]
            worker_publishes += bool(events)
            for e in events:
                seen[e["uuid"]].add(e["type"])
        assert all(s == {"task-received", "task-started", "task-succeeded"} for s in seen.values()), \
            (seen, log.read_text()[-2000:])
        # 30 events: Celery's own flushing publishes nearly each alone (30); batched at most every
        # 5 s (or 24 events) they take a few publishes however slowly the machine runs the tasks.
        assert worker_publishes <= 10, worker_publishes
    finally:
        proc.terminate()
        proc.wait(30)
        sub.close()
        client.close()
