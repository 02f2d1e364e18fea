"""Build a tenant's Okta client, limiter and sync options for the engine (credentials decrypted
here, in the worker, never passed through the broker).

The engine knows nothing of Okta: an OktaClient is the engine's `PageSource` as it is, and what
its errors mean (including "would have to wait") is worker.connector.decisions' call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from worker.connector import SyncOptions
from worker.engine.runtime import TenantContext
from worker.okta.auth import PrivateKeyJWTAuth, SSWSAuth
from worker.okta.client import OktaClient
from worker.okta.ratelimit import LimiterConfig, MemoryLimiter, RedisLimiter
from worker.store.tenants import tenant_credentials

# Limiter waits up to this long are slept inside the task (cheap, keeps order); longer waits
# re-enqueue the page with a countdown so the worker slot is free for other tenants.
INLINE_WAIT = 0.25


def limiter_shares(sync_share: float) -> dict[str, float]:
    """The sync's share of each bucket; provisioning keeps the rest."""
    rest = round(1.0 - sync_share, 6)
    return {"sync": sync_share, "provisioning": rest} if rest > 0 else {"sync": sync_share}


def redis_limiter(redis_client: Any, sync_share: float, max_in_flight: int) -> RedisLimiter:
    """The limiter shared by every worker process (Redis)."""
    return RedisLimiter(redis_client, LimiterConfig(shares=limiter_shares(sync_share), max_in_flight=max_in_flight))


def memory_limiter(sync_share: float, max_in_flight: int) -> MemoryLimiter:
    """The in-process limiter of the embedded mode (same algorithm)."""
    return MemoryLimiter(LimiterConfig(shares=limiter_shares(sync_share), max_in_flight=max_in_flight))


def limiter_key(tenant_id: int) -> str:
    """The tenant's key in the limiter (its clients' `tenant`)."""
    return str(tenant_id)


def make_auth(credentials: dict[str, str], options: SyncOptions) -> Any:
    if credentials.get("api_token"):
        return SSWSAuth(credentials["api_token"])
    return PrivateKeyJWTAuth(credentials["client_id"], credentials["private_key"], credentials.get("key_id", ""),
                             use="sync", sync_secrets=options.sync_secrets)


def tenant_factory(limiter: Any, *, keys: Any = None, inline_wait: float = INLINE_WAIT,
                   response_hooks: Sequence[Callable[[Any], None]] = ()) -> Callable[[Any], TenantContext]:
    """A `Runtime.make_tenant` that builds clients sharing `limiter` (Redis or in-process);
    `response_hooks` are httpx response hooks called on every Okta response (e.g. metrics)."""

    def make(row: Any) -> TenantContext:
        options = SyncOptions.from_dict(row.options or {})
        auth = make_auth(tenant_credentials(row, keys), options)
        client = OktaClient(row.domain, auth, tenant=limiter_key(row.id), limiter=limiter, use="sync",
                            on_wait="raise", inline_wait=inline_wait, response_hooks=response_hooks)
        return TenantContext(tenant_id=row.id, name=row.name, client=client, options=options,
                             version=row.updated_at)

    return make
