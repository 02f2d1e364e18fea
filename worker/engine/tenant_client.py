"""Build a tenant's Okta client and sync options from its stored row (credentials decrypted here,
in the worker, never passed through the broker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.connector import SyncOptions
from worker.engine.runtime import TenantContext
from worker.okta.auth import PrivateKeyJWTAuth, SSWSAuth
from worker.okta.client import OktaClient
from worker.store.tenants import tenant_credentials

# Limiter waits up to this long are slept inside the task (cheap, keeps order); longer waits
# re-enqueue the page with a countdown so the worker slot is free for other tenants.
INLINE_WAIT = 0.25


def make_auth(credentials: dict[str, str], options: SyncOptions) -> Any:
    if credentials.get("api_token"):
        return SSWSAuth(credentials["api_token"])
    return PrivateKeyJWTAuth(credentials["client_id"], credentials["private_key"], credentials.get("key_id", ""),
                             use="sync", sync_secrets=options.sync_secrets)


def tenant_factory(limiter: Any, *, keys: Any = None, inline_wait: float = INLINE_WAIT
                   ) -> Callable[[Any], TenantContext]:
    """A `Runtime.make_tenant` that builds clients sharing `limiter` (Redis or in-process)."""

    def make(row: Any) -> TenantContext:
        options = SyncOptions.from_dict(row.options or {})
        auth = make_auth(tenant_credentials(row, keys), options)
        client = OktaClient(row.domain, auth, tenant=str(row.id), limiter=limiter, use="sync",
                            on_wait="raise", inline_wait=inline_wait)
        return TenantContext(tenant_id=row.id, name=row.name, client=client, options=options,
                             version=row.updated_at)

    return make
