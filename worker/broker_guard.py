"""Keep a worker alive, and keep what it could not run, when junk is pushed onto a queue.

kombu's Redis transport decodes each popped list item with `json.loads` inside the consumer loop;
an item that is not JSON, or JSON that is not an envelope (a number, a list), raises there and the
worker stops with "Unrecoverable error" (found by tests/badinput). Anyone able to LPUSH to the
broker could stop every worker on a queue. The guard replaces such an item with an envelope that
has no task header: Celery then logs "Received and deleted unknown message" and acks it.

A queue that upstream systems write to (provisioning) can also be *watched*: every message
delivered from it is checked (an envelope, a task this queue runs, a JSON body of
[args, kwargs, embed]) and one that fails is handed to the queue's sink with the reason, so it
is recorded where operators look (the rejected list) instead of only in a log line. The log
gets the reason and size only: the item may be huge or hold a secret someone pasted.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("oktasync.broker")

# How much of a malformed item its sink is given (the rest is counted, not kept).
RAW_KEEP = 64 * 1024
_MARK = "oktasync-malformed"  # a key of the replacement envelope: why, and the raw item

_installed = False


@dataclass(frozen=True)
class Watch:
    tasks: frozenset[str]
    sink: Callable[[str, str, int], None]  # (reason, first RAW_KEEP chars, size in chars)


_watched: dict[str, Watch] = {}


def watch(queue: str, tasks: set[str], sink: Callable[[str, str, int], None]) -> None:
    """Check every message delivered from `queue`; give a malformed one to `sink` and drop it."""
    _watched[queue] = Watch(frozenset(tasks), sink)


def _replacement(mark: dict[str, str] | None = None) -> dict[str, Any]:
    envelope = {
        "body": base64.b64encode(b"malformed").decode(),
        "content-encoding": "binary", "content-type": "application/data",
        "headers": {},  # no "task": Celery treats it as an unknown message, logs and acks it
        "properties": {"delivery_tag": str(uuid.uuid4()), "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": ""}, "priority": 0},
    }
    if mark:
        envelope[_MARK] = mark
    return envelope


def problem(message: dict[str, Any], tasks: frozenset[str]) -> str | None:
    """Why this envelope cannot run on a queue that runs `tasks` (None if it can)."""
    headers = message.get("headers")
    task = headers.get("task") if isinstance(headers, dict) else None
    if not isinstance(task, str):
        return "not a Celery task message (no task header)"
    if task not in tasks:
        return f"unknown task {task[:100]!r} for this queue (expected one of {', '.join(sorted(tasks))})"
    if message.get("content-type") != "application/json":
        return f"content-type {str(message.get('content-type'))[:60]!r} is not application/json"
    body = message.get("body")
    try:
        raw = base64.b64decode(body, validate=True) if message["properties"].get("body_encoding") == "base64" else body
        decoded = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return f"body of task {task} is not base64 JSON: {type(exc).__name__}"
    if not (isinstance(decoded, list) and len(decoded) == 3 and isinstance(decoded[0], list)
            and isinstance(decoded[1], dict)):
        return f"body of task {task} is not [args, kwargs, embed] (Celery message protocol 2)"
    return None


def _checked(message: Any, queue: str) -> Any:
    """The message to deliver: itself, or a replacement that Celery acks and drops."""
    if isinstance(message, dict) and _MARK in message:
        mark = message.pop(_MARK)  # safe_loads' replacement: deliver it without the raw item
        why, raw, replacement = mark["why"], mark["raw"], message
    elif not isinstance(message, dict) or not isinstance(message.get("properties"), dict):
        why, raw, replacement = "not a message envelope", json.dumps(message), None
    elif queue in _watched and (reason := problem(message, _watched[queue].tasks)):
        why, raw, replacement = reason, json.dumps(message), None
    else:
        return message
    watched = _watched.get(queue)
    log.error("dropping a malformed message on queue %r (%s): %d characters%s", queue, why, len(raw),
              "; kept in its rejected list" if watched else "")
    if watched:
        try:
            watched.sink(why, raw[:RAW_KEEP], len(raw))
        except Exception:  # noqa: BLE001 - the consumer loop must survive a sink that fails
            log.exception("could not record the malformed message on queue %r", queue)
    return replacement or _replacement()


def install() -> None:
    """Wrap kombu.transport.redis's `loads` (not JSON) and its Transport's `_deliver` (everything
    else, with the queue known). Idempotent. `loads` also reads kombu's own unacked entries
    ([msg, exchange, key] lists), so only a decode failure is replaced there."""
    global _installed
    if _installed:
        return
    from kombu.transport import redis as transport

    original_loads = transport.loads
    original_deliver = transport.Transport._deliver

    def safe_loads(s: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_loads(s, *args, **kwargs)
        except ValueError as exc:
            text = s if isinstance(s, str) else bytes(s).decode("utf-8", "replace")
            return _replacement({"why": f"not JSON: {type(exc).__name__}", "raw": text})

    def safe_deliver(self: Any, message: Any, queue: str) -> Any:
        return original_deliver(self, _checked(message, queue), queue)

    transport.loads = safe_loads
    transport.Transport._deliver = safe_deliver
    _installed = True
