"""Outcomes other than success, as exceptions the executors raise and the task classifies."""

from __future__ import annotations


class ProvisionError(Exception):
    """The request cannot succeed as asked: it fails at once with this message (no retry)."""


class InvalidRequest(ProvisionError):
    """The request itself is malformed (unknown tenant, bad id, missing argument...)."""


class PermissionDenied(ProvisionError):
    """The credentials lack a permission; the message names it."""


class NotFound(ProvisionError):
    """An object the request names does not exist in Okta."""


class RetryLater(Exception):
    """Transient: try again after `countdown` seconds (None: the task's backoff decides)."""

    def __init__(self, message: str, countdown: float | None = None):
        super().__init__(message)
        self.countdown = countdown


class IdempotencyConflict(ValueError):
    """The idempotency key is already used by a request with a different payload."""
