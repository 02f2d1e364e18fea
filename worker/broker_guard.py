"""Keep a worker alive when someone pushes a message that is not a kombu envelope onto a queue.

kombu's Redis transport decodes each popped list item with `json.loads` inside the consumer loop;
an item that is not JSON, or JSON that is not an envelope (a number, a list), raises there and the
worker stops with "Unrecoverable error" (found by tests/badinput). Anyone able to LPUSH to the
broker could stop every worker on a queue. The guard replaces such an item with an envelope that
has no task header: Celery then logs "Received and deleted unknown message" and acks it; we log the
first bytes of the item (never all of it: it may be huge or hold a secret someone pasted) first.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

log = logging.getLogger("oktasync.broker")

_installed = False


def _envelope_for(raw: Any, why: str) -> dict[str, Any]:
    text = raw if isinstance(raw, str) else repr(raw)
    log.error("discarding a malformed broker message (%s): %d bytes, starts %r", why, len(text), text[:80])
    return {
        "body": base64.b64encode(b"malformed").decode(),
        "content-encoding": "binary", "content-type": "application/data",
        "headers": {},  # no "task": Celery treats it as an unknown message, logs and acks it
        "properties": {"delivery_tag": str(uuid.uuid4()), "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": ""}, "priority": 0},
    }


def install() -> None:
    """Wrap kombu.transport.redis's `loads` (not JSON) and its Transport's `_deliver` (JSON that is
    not an envelope). Idempotent. `loads` also reads kombu's own unacked entries ([msg, exchange,
    key] lists), so only a decode failure is replaced there; the shape is checked at delivery."""
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
            return _envelope_for(s, f"not JSON: {type(exc).__name__}")

    def safe_deliver(self: Any, message: Any, queue: str) -> Any:
        if not isinstance(message, dict) or not isinstance(message.get("properties"), dict):
            message = _envelope_for(repr(message), "not a message envelope")
        return original_deliver(self, message, queue)

    transport.loads = safe_loads
    transport.Transport._deliver = safe_deliver
    _installed = True
