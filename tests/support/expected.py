"""What a sync must produce, built straight from oktasim's /__sim/state (independent of the connector),
and the store's documented finalize pruning applied to the connector's raw output."""

from __future__ import annotations

from dataclasses import dataclass, field

STANDARD = ("API_ACCESS_MANAGEMENT_ADMIN", "MOBILE_ADMIN", "ORG_ADMIN", "READ_ONLY_ADMIN", "REPORT_ADMIN",
            "SUPER_ADMIN", "USER_ADMIN", "HELP_DESK_ADMIN", "APP_ADMIN", "GROUP_MEMBERSHIP_ADMIN",
            # IAM-based standard roles: assigned and listed by type like the others
            "WORKFLOWS_ADMIN", "ACCESS_CERTIFICATIONS_ADMIN", "ACCESS_REQUESTS_ADMIN")


@dataclass
class Picture:
    resources: set[str] = field(default_factory=set)        # "<type>:<id>"
    entitlements: set[str] = field(default_factory=set)
    grants: set[str] = field(default_factory=set)
    app_scopes: dict[str, str] = field(default_factory=dict)  # app-user grant id -> USER/GROUP


def keep_user(profile: dict, domains: tuple[str, ...]) -> bool:
    if not domains:
        return True
    for key in ("email", "secondEmail", "login"):
        value = profile.get(key)
        if isinstance(value, str) and "@" in value and value.split("@")[-1].lower() in domains:
            return True
    return False


def expected(state: dict, *, skip_app_groups=False, sync_inactive_apps=False, sync_secrets=False,
             sync_custom_roles=False, filter_email_domains=(), can_read_tokens=True) -> Picture:
    p = Picture()
    users = {u["id"] for u in state["users"] if keep_user(u["profile"], filter_email_domains)}
    groups = {g["id"] for g in state["groups"] if not (skip_app_groups and g["type"] == "APP_GROUP")}
    apps = [a for a in state["apps"] if sync_inactive_apps or a["status"] == "ACTIVE"]
    principals = {f"user:{u}" for u in users} | {f"group:{g}" for g in groups} | {f"app:{a['id']}" for a in apps}

    def grant(ent: str, ptype: str, pid: str) -> str | None:
        ptype = "app" if ptype == "client" else ptype   # a service app's roles are the app's grants
        if ptype in ("user", "group", "app") and f"{ptype}:{pid}" not in principals:
            return None
        g = f"{ent}:{ptype}:{pid}"
        p.grants.add(g)
        return g

    p.resources |= {f"user:{u}" for u in users}
    for g in state["groups"]:
        if g["id"] in groups:
            p.resources.add(f"group:{g['id']}")
            p.entitlements.add(f"group:{g['id']}:member")
            for uid in g["members"]:
                grant(f"group:{g['id']}:member", "user", uid)
    for a in apps:
        p.resources.add(f"app:{a['id']}")
        ent = f"app:{a['id']}:access"
        p.entitlements.add(ent)
        for au in a["users"]:
            gid = grant(ent, "user", au["id"])
            if gid:
                p.app_scopes[gid] = au["scope"]
        for gid in a["groups"]:
            grant(ent, "group", gid if isinstance(gid, str) else gid["id"])
    roles = set(STANDARD)
    for ra in state["role_assignments"]:
        if ra.get("status", "ACTIVE") != "ACTIVE":
            continue
        if ra["type"] == "CUSTOM":
            if sync_custom_roles:
                grant(f"custom-role:{ra['role']}:assigned", ra["principal_type"], ra["principal_id"])
            continue
        roles.add(ra["type"])
        grant(f"role:{ra['type']}:assigned", ra["principal_type"], ra["principal_id"])
    p.resources |= {f"role:{r}" for r in roles}
    p.entitlements |= {f"role:{r}:assigned" for r in roles}
    if sync_custom_roles:
        for r in state["custom_roles"]:
            p.resources.add(f"custom-role:{r['id']}")
            p.entitlements.add(f"custom-role:{r['id']}:assigned")
        for rs in state["resource_sets"]:
            p.resources.add(f"resource-set:{rs['id']}")
            p.entitlements.add(f"resource-set:{rs['id']}:bindings")
            for b in rs["bindings"]:
                bid = f"resourceset-binding:{rs['id']}:{b['role']}"
                p.resources.add(bid)
                p.entitlements.add(f"{bid}:member")
                p.grants.add(f"resource-set:{rs['id']}:bindings:custom-role:{b['role']}")
                for m in b["members"]:
                    grant(f"{bid}:member", m["type"], m["id"])
                    # A binding member holds the custom role (Okta lists it in the member's roles).
                    grant(f"custom-role:{b['role']}:assigned", m["type"], m["id"])
    if sync_secrets and can_read_tokens:
        p.resources |= {f"api-token:{t['id']}" for t in state["api_tokens"]}
    return p


def observed(results) -> tuple[Picture, list[str], dict]:
    """The connector's output (PageResults) after the store's documented pruning: grants whose user,
    group or app principal is not a resource of the run are dropped. Also returns warnings and the objects."""
    p = Picture()
    warnings: list[str] = []
    objects: dict = {"resources": {}, "grants": {}}
    grants = []
    for r in results:
        for res in r.resources:
            p.resources.add(res.key)
            objects["resources"][res.key] = res
        p.entitlements |= {e.id for e in r.entitlements}
        grants += r.grants
        warnings += r.warnings
    for g in grants:
        if g.principal_type in ("user", "group", "app") and g.principal not in p.resources:
            continue
        p.grants.add(g.id)
        objects["grants"][g.id] = g
        if g.entitlement_id.startswith("app:") and g.principal_type == "user":
            p.app_scopes[g.id] = g.annotations.get("scope")
    return p, warnings, objects
