"""What the broker guard lets through on a watched queue, and what it keeps when it does not.

The end-to-end case (a real worker, junk LPUSHed onto the provisioning queue, the rejected list)
is tests/badinput/test_provisioning_messages.py; here each rule is checked on its own."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.provisioning import raw_message
from worker import broker_guard

TASKS = frozenset({"oktasync.provision.submit", "oktasync.provision.execute"})


def envelope(**changes) -> dict:
    message = json.loads(raw_message("oktasync.provision.submit", {"tenant": "acme"}))
    message.update(changes)
    return message


def with_body(raw: bytes) -> dict:
    return envelope(body=base64.b64encode(raw).decode())


def test_a_protocol_2_task_message_passes():
    assert broker_guard.problem(envelope(), TASKS) is None


@pytest.mark.parametrize("message, says", [
    (envelope(headers={"lang": "py"}), "no task header"),
    (envelope(headers="task"), "no task header"),
    (json.loads(raw_message("oktasync.provision.no_such_task", {})), "unknown task 'oktasync.provision.no_such_task'"),
    (json.loads(raw_message("oktasync.sync.page", {})), "unknown task 'oktasync.sync.page'"),
    (envelope(**{"content-type": "application/x-python-serialize"}), "is not application/json"),
    (with_body(b"{not json"), "is not base64 JSON"),
    (envelope(body="%%% not base64"), "is not base64 JSON"),
    (with_body(b'{"tenant": "acme"}'), "is not [args, kwargs, embed]"),
    (with_body(b'[[], [], {}]'), "is not [args, kwargs, embed]"),
])
def test_what_a_watched_queue_refuses_and_why(message, says):
    assert says in (broker_guard.problem(message, TASKS) or "")


@pytest.fixture
def kept(monkeypatch):
    got: list[tuple[str, str, int]] = []
    monkeypatch.setattr(broker_guard, "_watched", {})
    broker_guard.watch("provisioning", set(TASKS), lambda why, raw, size: got.append((why, raw, size)))
    return got


def test_a_malformed_message_is_given_to_the_sink_and_replaced(kept):
    junk = envelope(headers={})
    delivered = broker_guard._checked(junk, "provisioning")
    assert delivered["headers"] == {} and delivered["properties"]["delivery_tag"] != junk["properties"]["delivery_tag"]
    [(why, raw, size)] = kept
    assert "no task header" in why and json.loads(raw) == junk and size == len(raw)


def test_a_good_message_is_delivered_untouched(kept):
    good = envelope()
    assert broker_guard._checked(good, "provisioning") is good
    assert kept == []


def test_other_queues_are_only_guarded_against_non_envelopes(kept):
    unknown_task = json.loads(raw_message("oktasync.provision.no_such_task", {}))
    assert broker_guard._checked(unknown_task, "sync") is unknown_task  # Celery itself reports it there
    assert broker_guard._checked([1, 2], "sync")["headers"] == {}
    assert kept == []


def test_a_huge_item_is_kept_truncated_with_its_size(kept):
    broker_guard._checked("x" * (broker_guard.RAW_KEEP * 3), "provisioning")
    [(_, raw, size)] = kept
    assert len(raw) == broker_guard.RAW_KEEP and size == broker_guard.RAW_KEEP * 3 + 2  # JSON quotes


def test_a_sink_that_fails_does_not_stop_delivery(monkeypatch):
    monkeypatch.setattr(broker_guard, "_watched", {})

    def broken(*_):
        raise ConnectionError("redis is down")

    broker_guard.watch("provisioning", set(TASKS), broken)
    assert broker_guard._checked("junk", "provisioning")["headers"] == {}
