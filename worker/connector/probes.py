"""Capability probes' plumbing: what one probe found, and how a probe request's answer reads.

Reads are probed by reading one item. Writes are probed with requests that cannot change anything
because they name an object that does not exist (or carry a body Okta must refuse): Okta checks the
caller's permission first, so 403 (E0000006, or an OAuth insufficient_scope) means "not allowed",
while 404 / 400 means "allowed, and the object was not found / the body was refused". The probes
themselves live with their resource type (worker.connector.types); worker.connector.capabilities
runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.okta.errors import OktaAuthenticationError, OktaError, OktaPermissionDenied

# Ids in Okta's formats that no org holds (20 characters, prefixes 00u / 00g).
PROBE_USER = "00uoktasyncprobe0000"
PROBE_GROUP = "00goktasyncprobe0000"


@dataclass
class Capability:
    name: str
    allowed: bool | None  # None: the probe could not tell
    how: str  # the request(s) used
    detail: str = ""


class CredentialsRejected(Exception):
    """The credentials do not work at all (401, token endpoint refusal): nothing can be probed."""

    def __init__(self, error: OktaError):
        super().__init__(str(error))
        self.error = error


class ProbeFailed(Exception):
    """The org could not be asked at all (unreachable, 5xx, rate limited after retries)."""

    def __init__(self, error: OktaError):
        super().__init__(str(error))
        self.error = error


def outcome(call: Callable[[], Any], ok_errors: tuple[type[OktaError], ...] = ()) -> tuple[bool | None, str]:
    """Run one probe request: (allowed, detail)."""
    try:
        call()
        return True, "allowed"
    except OktaAuthenticationError as exc:
        raise CredentialsRejected(exc) from None
    except OktaPermissionDenied as exc:
        return False, f"denied: {exc.error_code or ''} {exc.error_summary or ''}".strip()
    except ok_errors as exc:
        return True, f"allowed (Okta answered {exc.status} {exc.error_code or ''} to the harmless probe)".strip()
    except OktaError as exc:
        return None, f"could not tell: {exc}"


def capability(name: str, how: str, call: Callable[[], Any],
               ok_errors: tuple[type[OktaError], ...] = ()) -> Capability:
    ok, detail = outcome(call, ok_errors)
    return Capability(name, ok, how, detail)
