"""Provisioning helpers: a simulator with three token levels, a migrated store with one tenant per
token level, a Celery stand-in that keeps what would be published, and hand-built broker messages."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

SUPER = "00sim-super-admin-token-0000000000000000000"
AGA = "00sim-app-group-admin-token-000000000000000"
RO = "00sim-read-only-token-000000000000000000000"
TOKENS = {"super": SUPER, "aga": AGA, "ro": RO}


def sim_args(*extra: str) -> list[str]:
    return ["--users", "40", "--api-token", f"{SUPER}=super-admin", "--api-token", f"{AGA}=app-group-admin",
            "--api-token", f"{RO}=read-only", *extra]


@dataclass
class Store:
    url: str
    sessions: Any
    tenants: dict[str, int]  # level -> tenant id ("super", "aga", "ro"), names are the levels

    def session(self) -> Any:
        return self.sessions()

    def request(self, rid: int) -> Any:
        from worker.store.tables import ProvisioningRequest

        with self.sessions() as s:
            return s.get(ProvisioningRequest, rid)

    def view(self, tenant: str = "super") -> set[str]:
        """Grant ids in the tenant's current view."""
        from worker.store.tables import GrantRow, Tenant

        with self.sessions() as s:
            run = s.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == self.tenants[tenant]))
            return set(s.scalars(sa.select(GrantRow.id).where(GrantRow.run_id == run)))

    def resources(self, tenant: str = "super") -> set[str]:
        from worker.store.tables import ResourceRow, Tenant

        with self.sessions() as s:
            run = s.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == self.tenants[tenant]))
            return set(s.scalars(sa.select(ResourceRow.id).where(ResourceRow.run_id == run)))

    def resource_profile(self, resource_id: str, tenant: str = "super") -> dict:
        """The profile the tenant's current view shows for one resource ("user:00u1")."""
        from worker.store.tables import ResourceRow, Tenant

        with self.sessions() as s:
            run = s.scalar(sa.select(Tenant.current_run_id).where(Tenant.id == self.tenants[tenant]))
            return s.scalar(sa.select(ResourceRow.profile).where(ResourceRow.run_id == run,
                                                                 ResourceRow.id == resource_id))


def make_store(url: str, sim_url: str) -> Store:
    """Migrate `url`, add tenants super/aga/ro on the simulator, each with an empty current view."""
    from worker.store.db import make_engine, make_session_factory
    from worker.store.migrate import migrate
    from worker.store.tables import SyncRun, Tenant
    from worker.store.tenants import create_tenant

    migrate(url)
    sessions = make_session_factory(make_engine(url))
    ids = {}
    with sessions() as s:
        for level, token in TOKENS.items():
            t = create_tenant(s, level, "example.okta.com", {"api_token": token})
            # The store accepts only Okta host names; the simulator is plain http on loopback.
            s.execute(sa.update(Tenant).where(Tenant.id == t.id).values(domain=sim_url))
            run = SyncRun(tenant_id=t.id, state="succeeded")
            s.add(run)
            s.flush()
            t.current_run_id = run.id
            ids[level] = t.id
        s.commit()
    return Store(url, sessions, ids)


class Recorder:
    """Celery app stand-in for in-process tests: keeps what would have been published."""

    def __init__(self):
        self.sent: list[tuple[str, list[Any]]] = []

    def send_task(self, name: str, args: list[Any] | None = None, **_kw: Any) -> None:
        self.sent.append((name, list(args or [])))


def wait_done(store: Store, rid: int, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = store.request(rid)
        if row.state in ("succeeded", "failed", "dead"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"request {rid} not done after {timeout}s: {row.state} {row.error}")


def raw_message(task: str, kwargs: dict) -> str:
    """The Celery protocol-2 message as docs/provisioning.md documents it, built by hand (no Celery)."""
    tid = str(uuid.uuid4())
    body = json.dumps([[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return json.dumps({
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": tid, "root_id": tid, "parent_id": None, "group": None,
                    "retries": 0, "eta": None, "expires": None},
        "properties": {"correlation_id": tid, "reply_to": "", "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": "provisioning"}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
    })
