"""The org: one object holding every resource area's state (users, groups, apps, roles, API tokens),
with the ids it mints. Each area's objects, lookups and changes (with Okta's rules and errors) live
in its module under oktasim/areas/ as a mixin; an area may call another's methods through self
(e.g. deleting a group unassigns its apps and roles).

One Org lives per simulated org; handlers run on one event loop, so no locking is needed."""

from __future__ import annotations

import random
import string

from oktasim.areas import api_tokens, apps, groups, roles, users
from oktasim.areas.api_tokens import ApiTokenState
from oktasim.areas.apps import AppState
from oktasim.areas.groups import GroupState
from oktasim.areas.logs import Context, LogState, target, user_target
from oktasim.areas.roles import RoleState
from oktasim.areas.users import UserState

_B62 = string.digits + string.ascii_letters


class IdMaker:
    """Okta-like 20-character ids (`00u…`, `00g…`, `0oa…`), deterministic under the seed."""

    def __init__(self, seed: int):
        self._rng = random.Random(f"ids:{seed}")
        self._seen: set[str] = set()

    def new(self, prefix: str) -> str:
        while True:
            n = self._rng.getrandbits(84)
            chars = []
            for _ in range(14):
                n, r = divmod(n, 62)
                chars.append(_B62[r])
            i = (prefix + "".join(chars) + "5d7")[:20]
            if i not in self._seen:
                self._seen.add(i)
                return i


class Org(UserState, GroupState, AppState, RoleState, ApiTokenState, LogState):
    def __init__(self, seed: int = 0, name: str = "oktasim"):
        self.ids = IdMaker(seed)
        self.id = self.ids.new("00o")
        self.name = name
        self.created = "2020-01-01T00:00:00.000Z"
        self.user_type_id = self.ids.new("oty")
        self.schema_id = self.ids.new("osc")
        self._init_users()
        self._init_groups()
        self._init_apps()
        self._init_roles()
        self._init_api_tokens()
        self._init_logs(seed)

    def token_admin(self) -> str | None:
        """The admin the simulator's SSWS tokens belong to: the first user holding SUPER_ADMIN (the
        actor of API changes in the System Log; churn never removes them)."""
        for uid in self.admins:
            if "SUPER_ADMIN" in self.roles.get(("user", uid), {}):
                return uid
        return None

    def request_context(self, principal, uri: str, ip: str, user_agent: str) -> Context:
        """The System Log context of an API request: an SSWS token acts as its admin user, an OAuth
        service app as itself (with no user)."""
        if principal is not None and principal.kind == "oauth":
            actor = target(principal.id, "PublicClientApp", principal.id, principal.id)
            return Context(actor, ip=ip, user_agent=user_agent, request_uri=uri)
        return Context(self.admin_actor(), token_id=principal.id if principal else None, ip=ip,
                       user_agent=user_agent, request_uri=uri)

    def admin_actor(self) -> dict:
        uid = self.token_admin()
        return user_target(self.users[uid]) if uid else target("00u_oktasim_admin", "User", "admin", "Admin")

    def snapshot(self) -> dict:
        """The whole org as /__sim/state shows it, each area contributing its part."""
        return {"users": users.snapshot(self), "groups": groups.snapshot(self), "apps": apps.snapshot(self),
                **roles.snapshot(self), "api_tokens": api_tokens.snapshot(self)}
