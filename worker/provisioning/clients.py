"""Okta clients for provisioning: credentials -> auth -> OktaClient(use="provisioning").

The client never sleeps in a worker (on_wait="raise": RateLimitWait tells the task how long to
defer itself) and does not retry on its own (max_retries=0): the request's retry budget, kept in
its row, decides. The one-shot CLI is not a worker and lets the client sleep and retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from worker.okta.auth import PrivateKeyJWTAuth, Secret, SSWSAuth
from worker.okta.client import OktaClient
from worker.provisioning.errors import ProvisionError

log = logging.getLogger(__name__)


def make_auth(credentials: Mapping[str, Any]) -> Any:
    if credentials.get("api_token"):
        return SSWSAuth(Secret(str(credentials["api_token"])))
    if credentials.get("client_id") and credentials.get("private_key"):
        return PrivateKeyJWTAuth(str(credentials["client_id"]), Secret(str(credentials["private_key"])),
                                 str(credentials.get("key_id") or ""), use="provisioning")
    raise ProvisionError("the tenant's credentials hold neither an api_token nor client_id + private_key")


def provisioning_limiter(redis_url: str | None) -> Any:
    """The shared Redis limiter's provisioning share, when the limiter package provides one."""
    try:
        from worker.okta import ratelimit
    except ImportError:  # pragma: no cover - the limiter is part of the product
        return None
    factory = getattr(ratelimit, "redis_limiter", None) or getattr(ratelimit, "make_limiter", None)
    if factory is None or not redis_url:
        return None
    try:
        return factory(redis_url)
    except Exception as exc:  # noqa: BLE001 - run without pacing rather than not at all; say so
        log.warning("provisioning runs without the shared rate limiter: %s", exc)
        return None


def make_client(domain: str, credentials: Mapping[str, Any], *, tenant: str, limiter: Any = None,
                worker: bool = True) -> OktaClient:
    auth = make_auth(credentials)
    if worker:
        return OktaClient(domain, auth, tenant=tenant, limiter=limiter, use="provisioning",
                          on_wait="raise", max_retries=0)
    return OktaClient(domain, auth, tenant=tenant, limiter=limiter, use="provisioning", on_wait="sleep")
