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


class SyncedFile:
    """An embedded sync of `sim_url` into a SQLite file, and provisioning requests run against it in
    this process (for write-through tests: provision, then compare the view with the next sync)."""

    def __init__(self, sim_url: str, file: str, options: Any):
        from worker.provisioning import runner
        from worker.store.db import make_engine, make_session_factory
        from worker.store.secrets import load_keys, local_key_file
        from worker.store.tables import Tenant

        self.sim_url, self.file, self.options = sim_url, file, options
        self.sync()
        self.sessions = make_session_factory(make_engine(f"sqlite:///{file}"))
        self.client_for = runner.default_client_factory(keys=load_keys(local_key_file(file + ".key")))
        with self.sessions() as s:
            self.tenant = s.scalar(sa.select(Tenant.name))

    def sync(self) -> Any:
        from worker.engine.embedded import run_embedded

        result = run_embedded(self.sim_url, {"api_token": SUPER}, self.options, file=self.file)
        assert result.state == "succeeded", result.error
        return result

    def run(self, kind: str, payload: dict) -> None:
        """Record and run one request to success (retries included)."""
        from worker.provisioning import runner, service

        with self.sessions() as s:
            ref = service.record_and_publish(s, Recorder(), self.tenant, kind, payload)
        for _ in range(20):
            step = runner.run_request(self.sessions, ref.id, self.client_for, runner.RetryPolicy(2, 0.05, 0.2))
            if step.done:
                break
            time.sleep(min(step.countdown, 0.3))
        assert step.state == "succeeded", (kind, payload, step)

    def resources(self) -> dict[str, dict]:
        """Resource id -> profile in the current view."""
        from worker.store.tables import ResourceRow, Tenant

        with self.sessions() as s:
            run_id = s.scalar(sa.select(Tenant.current_run_id))
            rows = s.execute(sa.select(ResourceRow.id, ResourceRow.profile).where(ResourceRow.run_id == run_id))
            return {r.id: r.profile for r in rows}

    def grants(self, prefix: str = "") -> dict[str, dict]:
        """Grant id -> annotations in the current view (ids starting with `prefix`)."""
        from worker.store.tables import GrantRow, Tenant

        with self.sessions() as s:
            run_id = s.scalar(sa.select(Tenant.current_run_id))
            rows = s.execute(sa.select(GrantRow.id, GrantRow.annotations).where(
                GrantRow.run_id == run_id, GrantRow.id.startswith(prefix)))
            return {r.id: r.annotations for r in rows}
