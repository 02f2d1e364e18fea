"""Okta clients for provisioning: credentials -> auth -> OktaClient(use="provisioning").

The client never sleeps in a worker (on_wait="raise": RateLimitWait tells the task how long to
defer itself) and does not retry on its own (max_retries=0): the request's retry budget, kept in
its row, decides. The one-shot CLI is not a worker and lets the client sleep and retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.okta.auth import PrivateKeyJWTAuth, Secret, SSWSAuth
from worker.okta.client import OktaClient
from worker.provisioning.errors import ProvisionError


def make_auth(credentials: Mapping[str, Any]) -> Any:
    if credentials.get("api_token"):
        return SSWSAuth(Secret(str(credentials["api_token"])))
    if credentials.get("client_id") and credentials.get("private_key"):
        return PrivateKeyJWTAuth(str(credentials["client_id"]), Secret(str(credentials["private_key"])),
                                 str(credentials.get("key_id") or ""), use="provisioning")
    raise ProvisionError("the tenant's credentials hold neither an api_token nor client_id + private_key")


# Limiter waits up to this long are slept in the task; longer ones re-enqueue the request with a
# countdown. Far larger than the sync's 0.25 s on purpose: a deferred request starts over with its
# read-before-write checks, which spend the same paced bucket again, so under contention it can be
# deferred again and again (Okta's /api/v1/apps* bucket allows ~1 call per 2.4 s to provisioning);
# waiting for its slot in the task costs far less. The Celery task keeps it under a third of its
# soft time limit (Settings.provision_wait).
INLINE_WAIT = 30.0


def make_client(domain: str, credentials: Mapping[str, Any], *, tenant: str, limiter: Any = None,
                worker: bool = True, inline_wait: float = INLINE_WAIT) -> OktaClient:
    """`tenant` keys the limiter's buckets: pass str(tenant id), as the sync does, so both uses
    share the tenant's buckets and each keeps its share."""
    auth = make_auth(credentials)
    if worker:
        return OktaClient(domain, auth, tenant=tenant, limiter=limiter, use="provisioning",
                          on_wait="raise", max_retries=0, inline_wait=inline_wait)
    return OktaClient(domain, auth, tenant=tenant, limiter=limiter, use="provisioning", on_wait="sleep")
