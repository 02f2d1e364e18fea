"""Grant store helpers: a migrated store with tenants and runs, and small access-model builders."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from worker.model import Entitlement, Grant, Resource
from worker.store.generations import finalize_generation
from worker.store.tables import SyncRun
from worker.store.tenants import create_tenant
from worker.store.writes import write_page

TEST_TOKEN = "00test-api-token-Very-Secret-1234567890abcdef"


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


def sync_and_finalize(store, t, resources, entitlements, grants, **kw):
    """One run of tenant `t` writing one page, then finalized (kw go to finalize_generation)."""
    run = store.start_run(t)
    with store.Session() as s:
        write_page(s, t, run, resources, entitlements, grants)
        s.commit()
        result = finalize_generation(s, t, run, **kw)
    return run, result


ORG1 = dict(
    resources=[user("u1"), user("u2"), user("u3"), group("g1"), group("g2"), app("a1"),
               Resource("role", "SUPER_ADMIN", "Super admin")],
    entitlements=[member_ent("g1"), member_ent("g2"), access_ent("a1"), Entitlement("role", "SUPER_ADMIN", "assigned")],
    grants=[member("g1", "u1"), member("g1", "u2"), member("g2", "u2"),
            app_grant("a1", "group", "g1"), app_grant("a1", "group", "g2"),
            app_grant("a1", "user", "u2", annotations={"scope": "GROUP"}),  # listed by Okta too
            app_grant("a1", "user", "u3"),
            Grant("role:SUPER_ADMIN:assigned", "group", "g2")],
)


def tamper_view(engine: sa.Engine, tenant_id: int | None = None, *, remove: str | None = None,
                add: str | None = None) -> dict[str, str]:
    """Change a tenant's current view behind oktasync's back (drift for the verify tests): delete
    the grant `remove` (default: the first listed group membership) and insert a grant copied from
    it with the id `add` (default: the same entitlement for a user Okta does not have).
    Returns {"removed": id, "added": id}."""
    from worker.store.tables import GrantRow, Tenant

    g = GrantRow.__table__
    with engine.begin() as c:
        view_q = sa.select(Tenant.current_run_id)
        view = c.execute(view_q if tenant_id is None else view_q.where(Tenant.id == tenant_id)).scalar_one()
        pick = sa.select(g).where(g.c.run_id == view)
        pick = pick.where(g.c.id == remove) if remove else pick.where(
            g.c.expanded.is_(False), g.c.entitlement_id.like("group:%:member")).order_by(g.c.id)
        row = dict(c.execute(pick.limit(1)).mappings().one())
        c.execute(sa.delete(g).where(g.c.run_id == view, g.c.id == row["id"]))
        fake = add or f"{row['entitlement_id']}:user:00unotinokta"
        c.execute(sa.insert(g).values({**row, "id": fake, "principal_type": "user",
                                       "principal_id": fake.rsplit(":", 1)[1]}))
    return {"removed": row["id"], "added": fake}
