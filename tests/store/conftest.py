"""Fixtures for grant store tests: a migrated database on both dialects and a tenant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from worker.model import Entitlement, Grant, Resource
from worker.store.db import make_engine, make_session_factory
from worker.store.migrate import migrate
from worker.store.secrets import generate_key
from worker.store.tables import SyncRun
from worker.store.tenants import create_tenant

TEST_TOKEN = "00test-api-token-Very-Secret-1234567890abcdef"


@pytest.fixture
def secret_key(monkeypatch) -> str:
    key = generate_key()
    monkeypatch.setenv("OKTASYNC_SECRET_KEY", key)
    return key


@dataclass
class Store:
    url: str
    engine: sa.Engine
    Session: sessionmaker[Session]

    def tenant(self, name: str = "acme", **kw) -> int:
        with self.Session() as s:
            t = create_tenant(s, name, f"{name}.okta.com", {"api_token": TEST_TOKEN}, **kw)
            s.commit()
            return t.id

    def start_run(self, tenant_id: int) -> int:
        with self.Session() as s:
            run = SyncRun(tenant_id=tenant_id, state="running")
            s.add(run)
            s.commit()
            return run.id


@pytest.fixture
def store(db_url, secret_key) -> Iterator[Store]:
    migrate(db_url)
    engine = make_engine(db_url)
    yield Store(db_url, engine, make_session_factory(engine))
    engine.dispose()


def user(uid: str, email: str | None = None) -> Resource:
    return Resource("user", uid, f"User {uid}", {"email": email or f"{uid}@example.com"})


def group(gid: str) -> Resource:
    return Resource("group", gid, f"Group {gid}", {"type": "OKTA_GROUP"})


def app(aid: str) -> Resource:
    return Resource("app", aid, f"App {aid}", {"status": "ACTIVE"})


def member_ent(gid: str) -> Entitlement:
    return Entitlement("group", gid, "member", f"Group {gid} member")


def access_ent(aid: str) -> Entitlement:
    return Entitlement("app", aid, "access", f"App {aid} access")


def member(gid: str, uid: str) -> Grant:
    return Grant(f"group:{gid}:member", "user", uid)


def app_grant(aid: str, ptype: str, pid: str, **kw) -> Grant:
    return Grant(f"app:{aid}:access", ptype, pid, **kw)
