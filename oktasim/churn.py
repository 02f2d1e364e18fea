"""Churn: random, realistic changes to the org through the same Org methods the API handlers call,
so each writes the System Log events and moves the timestamps an API change would
(`POST /__sim/churn {"changes": N, "seed": S}`, and `--churn-per-minute`).

Changes keep the org consistent: the Everyone group and the admin the SSWS tokens act as are never
deleted, deactivated or stripped of SUPER_ADMIN; the built-in apps stay active; deletes go through
Okta's two steps (deactivate, then delete), which take the user out of every group, app and role."""

from __future__ import annotations

import random
from collections.abc import Callable

from oktasim.areas.logs import Context
from oktasim.areas.roles import STANDARD_ROLES
from oktasim.generate import BUILT_IN_APPS
from oktasim.org import Org

Change = dict   # what was done: {"kind": …, ids…}

_FIRST = ("Ada", "Grace", "Linus", "Ken", "Barbara", "Edsger", "Frances", "Alan", "Margaret", "Dennis")
_LAST = ("Lovelace", "Hopper", "Torvalds", "Thompson", "Liskov", "Dijkstra", "Allen", "Turing", "Hamilton")
_TITLES = ("Engineer", "Manager", "Analyst", "Director", "Designer", "Contractor")
_GRANTABLE = [t for t in STANDARD_ROLES if t != "SUPER_ADMIN"]
_BUILT_IN_APP_NAMES = frozenset(name for name, _, _ in BUILT_IN_APPS)


class Churner:
    def __init__(self, org: Org, seed: int):
        self.org = org
        self.rng = random.Random(f"churn:{seed}")
        self.seed = seed
        self.made = 0

    def run(self, changes: int) -> list[Change]:
        """Apply `changes` changes; kinds with nothing to act on are skipped for another draw."""
        org = self.org
        org.log.context = Context(org.admin_actor(), user_agent="oktasim churn (admin console)")
        done: list[Change] = []
        kinds = list(KINDS)
        try:
            while len(done) < changes:
                for _ in range(len(kinds) * 4):
                    change = KINDS[self.rng.choice(kinds)](self)
                    if change is not None:
                        done.append(change)
                        break
                else:
                    break   # nothing left to change (an empty org)
        finally:
            org.log.context = None
        return done

    # ------------------------------------------------------------ choosing
    def _protected(self, uid: str) -> bool:
        return uid == self.org.token_admin()

    def _user(self, ok: Callable) -> str | None:
        org = self.org
        return org.user_order.pick(self.rng, lambda uid: not self._protected(uid) and ok(org.users[uid]))

    def _group(self, ok: Callable) -> str | None:
        org = self.org
        return org.group_order.pick(self.rng, lambda gid: ok(org.groups[gid]))

    def _okta_group(self, ok: Callable = lambda g: True) -> str | None:
        return self._group(lambda g: g.type == "OKTA_GROUP" and ok(g))

    def _app(self, ok: Callable) -> str | None:
        """An app users and groups are assigned to (not an OAuth service app)."""
        org = self.org
        return org.app_order.pick(self.rng, lambda aid: org.apps[aid].application_type != "service"
                                  and ok(org.apps[aid]))

    def _client(self, ok: Callable) -> str | None:
        """An OAuth service app (its client id)."""
        org = self.org
        return org.app_order.pick(self.rng, lambda aid: org.apps[aid].application_type == "service"
                                  and ok(org.roles.get(("client", aid), {})))

    def _name(self) -> str:
        self.made += 1
        return f"{self.rng.choice(_FIRST)}{self.seed}x{self.made}"

    # ------------------------------------------------------------ users
    def user_create(self) -> Change:
        org = self.org
        while True:
            first, last = self._name(), self.rng.choice(_LAST)
            login = f"{first.lower()}.{last.lower()}@churn.example.com"
            if login not in org.logins:
                break
        u = org.create_user({"profile": {"firstName": first, "lastName": last, "email": login, "login": login},
                             "credentials": {"password": {"value": "Churn-pass-1"}}},
                            activate=self.rng.random() < 0.8)
        return {"kind": "user.create", "user": u.id, "status": u.status}

    def _lifecycle(self, kind: str, op: str, statuses: tuple[str, ...]) -> Change | None:
        uid = self._user(lambda u: u.status in statuses)
        if uid is None:
            return None
        self.org.lifecycle(uid, op)
        return {"kind": kind, "user": uid, "status": self.org.users[uid].status}

    def user_deactivate(self) -> Change | None:
        return self._lifecycle("user.deactivate", "deactivate", ("ACTIVE", "PROVISIONED", "SUSPENDED", "STAGED"))

    def user_reactivate(self) -> Change | None:
        """A deactivated user activated again."""
        return self._lifecycle("user.reactivate", "activate", ("DEPROVISIONED",))

    def user_suspend(self) -> Change | None:
        return self._lifecycle("user.suspend", "suspend", ("ACTIVE",))

    def user_unsuspend(self) -> Change | None:
        return self._lifecycle("user.unsuspend", "unsuspend", ("SUSPENDED",))

    def user_delete(self) -> Change | None:
        uid = self._user(lambda u: True)
        if uid is None:
            return None
        org = self.org
        if org.users[uid].status != "DEPROVISIONED":
            org.delete_user(uid)     # Okta's first DELETE deactivates
        org.delete_user(uid)
        return {"kind": "user.delete", "user": uid}

    def user_update(self) -> Change | None:
        uid = self._user(lambda u: True)
        if uid is None:
            return None
        self.org.update_user(uid, {"profile": {"title": self.rng.choice(_TITLES),
                                               "lastName": self.rng.choice(_LAST)}}, replace=False)
        return {"kind": "user.update", "user": uid}

    # ------------------------------------------------------------ groups and membership
    def group_create(self) -> Change:
        g = self.org.create_group({"profile": {"name": f"Churn group {self._name()}", "description": "churn"}})
        return {"kind": "group.create", "group": g.id}

    def group_rename(self) -> Change | None:
        gid = self._okta_group()
        if gid is None:
            return None
        g = self.org.groups[gid]
        self.org.update_group(gid, {"profile": {**g.profile, "name": f"Renamed {self._name()}"}})
        return {"kind": "group.rename", "group": gid}

    def group_delete(self) -> Change | None:
        gid = self._okta_group(lambda g: len(g.members) <= 2000)
        if gid is None:
            return None
        self.org.delete_group(gid)
        return {"kind": "group.delete", "group": gid}

    def membership_add(self) -> Change | None:
        org = self.org
        gid = self._okta_group()
        if gid is None:
            return None
        members = org.groups[gid].members
        uid = self._user(lambda u: u.status != "DEPROVISIONED" and u.id not in members)
        if uid is None:
            return None
        org.add_member(gid, uid)
        return {"kind": "membership.add", "group": gid, "user": uid}

    def membership_remove(self) -> Change | None:
        org = self.org
        gid = self._okta_group(lambda g: len(g.members) > 0)
        if gid is None:
            return None
        uid = org.groups[gid].members.pick(self.rng, lambda uid: True)
        org.remove_member(gid, uid)
        return {"kind": "membership.remove", "group": gid, "user": uid}

    # ------------------------------------------------------------ apps
    def app_user_assign(self) -> Change | None:
        org = self.org
        aid = self._app(lambda a: True)
        if aid is None:
            return None
        uid = self._user(lambda u: u.status != "DEPROVISIONED" and u.id not in org.apps[aid].direct)
        if uid is None:
            return None
        org.assign_app_user(aid, {"id": uid, "scope": "USER"})
        return {"kind": "app.user.assign", "app": aid, "user": uid}

    def app_user_unassign(self) -> Change | None:
        org = self.org
        aid = self._app(lambda a: any(not a.via.get(u) for u in a.direct))
        if aid is None:
            return None
        a = org.apps[aid]
        uid = self.rng.choice([u for u in a.direct if not a.via.get(u)])
        org.unassign_app_user(aid, uid)
        return {"kind": "app.user.unassign", "app": aid, "user": uid}

    def app_group_assign(self) -> Change | None:
        org = self.org
        aid = self._app(lambda a: True)
        if aid is None:
            return None
        gid = self._group(lambda g: g.type != "BUILT_IN" and aid not in g.apps and len(org.group_members(g)) <= 2000)
        if gid is None:
            return None
        org.assign_app_group(aid, gid, {})
        return {"kind": "app.group.assign", "app": aid, "group": gid}

    def app_group_unassign(self) -> Change | None:
        org = self.org
        aid = self._app(lambda a: any(org.groups[g].type != "BUILT_IN" for g in a.groups))
        if aid is None:
            return None
        gid = self.rng.choice([g for g in org.apps[aid].groups if org.groups[g].type != "BUILT_IN"])
        org.unassign_app_group(aid, gid)
        return {"kind": "app.group.unassign", "app": aid, "group": gid}

    def _app_status(self, op: str, status: str) -> Change | None:
        org = self.org   # any app, a service app too (its roles are then not synced, or synced again)
        aid = org.app_order.pick(self.rng, lambda a: org.apps[a].status == status
                                 and org.apps[a].name not in _BUILT_IN_APP_NAMES)
        if aid is None:
            return None
        self.org.set_app_status(aid, op)
        return {"kind": f"app.{op}", "app": aid}

    def app_activate(self) -> Change | None:
        return self._app_status("activate", "INACTIVE")

    def app_deactivate(self) -> Change | None:
        return self._app_status("deactivate", "ACTIVE")

    # ------------------------------------------------------------ admin roles
    def role_user_grant(self) -> Change | None:
        org = self.org
        uid = self._user(lambda u: u.status == "ACTIVE")
        if uid is None:
            return None
        free = [t for t in _GRANTABLE if t not in org.roles.get(("user", uid), {})]
        if not free:
            return None
        t = self.rng.choice(free)
        org.assign_role("user", uid, {"type": t})
        return {"kind": "role.user.grant", "user": uid, "role": t}

    def role_user_revoke(self) -> Change | None:
        org = self.org
        uid = org.admins.pick(self.rng, lambda u: any(t != "SUPER_ADMIN" or not self._protected(u)
                                                     for t in org.roles.get(("user", u), {})))
        if uid is None:
            return None
        held = [t for t in org.roles[("user", uid)] if t != "SUPER_ADMIN" or not self._protected(uid)]
        ra = org.roles[("user", uid)][self.rng.choice(held)]
        org.unassign_role("user", uid, ra.id)
        return {"kind": "role.user.revoke", "user": uid, "role": ra.type}

    def role_group_grant(self) -> Change | None:
        org = self.org
        gid = self._okta_group(lambda g: len(org.roles.get(("group", g.id), {})) < len(_GRANTABLE))
        if gid is None:
            return None
        t = self.rng.choice([t for t in _GRANTABLE if t not in org.roles.get(("group", gid), {})])
        org.assign_role("group", gid, {"type": t})
        return {"kind": "role.group.grant", "group": gid, "role": t}

    def role_group_revoke(self) -> Change | None:
        org = self.org
        held = [(gid, t) for (ptype, gid), ras in org.roles.items() if ptype == "group" for t in ras]
        if not held:
            return None
        gid, t = self.rng.choice(held)
        org.unassign_role("group", gid, org.roles[("group", gid)][t].id)
        return {"kind": "role.group.revoke", "group": gid, "role": t}

    def role_client_grant(self) -> Change | None:
        """A standard role to an OAuth service app (app.oauth2.client.privilege.grant)."""
        org = self.org
        cid = self._client(lambda held: len(held) < len(_GRANTABLE))
        if cid is None:
            return None
        t = self.rng.choice([t for t in _GRANTABLE if t not in org.roles.get(("client", cid), {})])
        org.assign_role("client", cid, {"type": t})
        return {"kind": "role.client.grant", "app": cid, "role": t}

    def role_client_revoke(self) -> Change | None:
        org = self.org
        cid = self._client(lambda held: bool(held))
        if cid is None:
            return None
        ra = org.roles[("client", cid)][self.rng.choice(list(org.roles[("client", cid)]))]
        org.unassign_role("client", cid, ra.id)
        return {"kind": "role.client.revoke", "app": cid, "role": ra.type}

    def binding_member_add(self) -> Change | None:
        org = self.org
        pairs = [(rs, b) for rs in org.resource_sets.values() for b in rs.bindings.values()]
        if not pairs:
            return None
        rs, b = self.rng.choice(pairs)
        taken = {(m.principal_type, m.principal_id) for m in b.members.values()}
        if self.rng.random() < 0.3:
            ptype, pid = "group", self._okta_group(lambda g: ("group", g.id) not in taken)
        else:
            ptype, pid = "user", self._user(lambda u: u.status == "ACTIVE" and ("user", u.id) not in taken)
        if pid is None:
            return None
        m = org.add_binding_member(rs, org.custom_roles[b.role_id], ptype, pid)
        return {"kind": "binding.member.add", "resource_set": rs.id, "role": b.role_id, ptype: pid, "member": m.id}

    def binding_member_remove(self) -> Change | None:
        org = self.org
        members = [(rs, b, m) for rs in org.resource_sets.values() for b in rs.bindings.values()
                   for m in b.members.values()]
        if not members:
            return None
        rs, b, m = self.rng.choice(members)
        org.remove_binding_member(rs.id, b.role_id, m.id)
        return {"kind": "binding.member.remove", "resource_set": rs.id, "role": b.role_id,
                m.principal_type: m.principal_id, "member": m.id}

    # ------------------------------------------------------------ API tokens
    def api_token_create(self) -> Change | None:
        org = self.org
        owner = org.admins.pick(self.rng, lambda u: org.users[u].status == "ACTIVE")
        if owner is None:
            return None
        t = org.create_api_token(f"Churn token {self._name()}", owner)
        return {"kind": "api_token.create", "token": t.id, "user": owner}

    def api_token_revoke(self) -> Change | None:
        tid = self.org.api_token_order.pick(self.rng, lambda t: True)
        if tid is None:
            return None
        self.org.revoke_api_token(tid)
        return {"kind": "api_token.revoke", "token": tid}


KINDS: dict[str, Callable[[Churner], Change | None]] = {
    "user.create": Churner.user_create, "user.deactivate": Churner.user_deactivate,
    "user.reactivate": Churner.user_reactivate, "user.suspend": Churner.user_suspend,
    "user.unsuspend": Churner.user_unsuspend, "user.delete": Churner.user_delete,
    "user.update": Churner.user_update,
    "group.create": Churner.group_create, "group.rename": Churner.group_rename,
    "group.delete": Churner.group_delete,
    "membership.add": Churner.membership_add, "membership.remove": Churner.membership_remove,
    "app.user.assign": Churner.app_user_assign, "app.user.unassign": Churner.app_user_unassign,
    "app.group.assign": Churner.app_group_assign, "app.group.unassign": Churner.app_group_unassign,
    "app.activate": Churner.app_activate, "app.deactivate": Churner.app_deactivate,
    "role.user.grant": Churner.role_user_grant, "role.user.revoke": Churner.role_user_revoke,
    "role.group.grant": Churner.role_group_grant, "role.group.revoke": Churner.role_group_revoke,
    "role.client.grant": Churner.role_client_grant, "role.client.revoke": Churner.role_client_revoke,
    "binding.member.add": Churner.binding_member_add, "binding.member.remove": Churner.binding_member_remove,
    "api_token.create": Churner.api_token_create, "api_token.revoke": Churner.api_token_revoke,
}


def churn(org: Org, changes: int, seed: int) -> list[Change]:
    return Churner(org, seed).run(changes)
