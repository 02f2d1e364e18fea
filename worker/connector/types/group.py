"""Groups: the groups list and each group's members, the group resource and its `member`
entitlement, membership grant/revoke, the create/modify/delete group actions and their probes
(baton-okta group.go; reference/baton-okta.md §1.2, §2, §3, §4)."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec, each, grants_page, object_id, q, records, text
from worker.connector.probes import PROBE_GROUP, PROBE_USER, Capability, capability, outcome
from worker.connector.types import role
from worker.connector.types.base import (
    OMIT_CREDENTIALS,
    Action,
    Arg,
    ChangeSources,
    DerivedMembers,
    Dirty,
    FindResources,
    ResourceType,
    Stream,
    Validated,
    View,
    event_targets,
)
from worker.model import (
    CountChanged,
    Entitlement,
    Grant,
    GrantAdded,
    GrantRemoved,
    Resource,
    ResourceRemoved,
    ResourceSaved,
    container_key,
    parse_entitlement_id,
    resource_key,
)
from worker.okta.errors import OktaInvalidRequest, OktaNotFound, OktaPermissionDenied
from worker.provisioning.context import (
    PERM_GROUPS,
    ExecContext,
    Outcome,
    PartialFailure,
    already,
    call,
    list_all,
)
from worker.provisioning.errors import NotFound, ProvisionError

NAME = "group"
GROUPS = "groups"  # stream kinds
GROUP_MEMBERS = "group-members"
GROUPS_LIMIT = 10000  # /groups: max 10000 (reference/okta-api.md §3.2)
GROUP_USERS_LIMIT = 1000  # /groups/{id}/users: default = max 1000

BUILT_IN = "BUILT_IN"  # the Everyone group: every user of the org, whatever its status
DERIVED = "derived"  # meta of an incremental groups list: Everyone's members are not listed
RECOUNT = "recount"  # meta: ids (comma-separated) the list returns for their app count only
VALIDATORS = "members_validators"  # meta: {id: lastMembershipUpdated the view stored} (JSON)
VALIDATOR = "last_membership_updated"  # the profile field holding it

_SOURCE = {"BUILT_IN": "built_in", "APP_GROUP": "app_imported", "OKTA_GROUP": "native"}


def key(gid: str) -> str:
    return resource_key(NAME, gid)


def member(gid: str, display_name: str = "") -> Entitlement:
    """`group:<gid>:member`"""
    return Entitlement(NAME, gid, "member", display_name)


# ------------------------------------------------------------------------------------ mapping

def stats(group: Mapping[str, Any]) -> dict[str, Any]:
    embedded = group.get("_embedded")
    found = embedded.get("stats") if isinstance(embedded, Mapping) else None
    return dict(found) if isinstance(found, Mapping) else {}


def resource(group: Mapping[str, Any]) -> Resource:
    gid = object_id(group, "group")
    profile = group.get("profile") if isinstance(group.get("profile"), Mapping) else {}
    gtype = group.get("type")
    data: dict[str, Any] = {
        "name": profile.get("name"),
        "description": profile.get("description"),
        "type": gtype,
        "group_source_type": _SOURCE.get(gtype, ""),
        "immutable": gtype == "BUILT_IN",
    }
    counts = stats(group)
    if "usersCount" in counts:
        data["users_count"] = counts["usersCount"]
    if "appsCount" in counts:
        data["apps_count"] = counts["appsCount"]
    if group.get("lastMembershipUpdated"):
        data[VALIDATOR] = group["lastMembershipUpdated"]  # an incremental run's validator (reference §7)
    return Resource(NAME, gid, text(profile.get("name")) or gid, data)


def entitlement(res: Resource) -> Entitlement:
    return member(res.id, f"{res.display_name} Group Member")


COUNTS = ("users_count", "apps_count")  # from expand=stats, which single-group answers lack


def saved(group: Mapping[str, Any], keep_counts: bool = False) -> ResourceSaved:
    """`keep_counts`: the change left the counts as they were (the view keeps its own)."""
    res = resource(group)
    return ResourceSaved(res, (entitlement(res),), COUNTS if keep_counts else ())


def counted(gid: str, delta: int) -> CountChanged:
    return CountChanged(key(gid), "users_count", delta)


# ------------------------------------------------------------------------------------ streams

def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(GROUPS, f"/api/v1/groups?expand=stats&limit={GROUPS_LIMIT}")]


def _groups(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    validators = json.loads(spec.meta_value(VALIDATORS) or "{}")

    def one(group: Any) -> None:
        res = resource(group)
        if options.skip_app_groups and res.profile.get("type") == "APP_GROUP":
            return
        out.resources.append(res)
        out.entitlements.append(entitlement(res))
        counts = stats(group)
        # An incremental run derives Everyone's members from the users it stages (_derived).
        derived = res.profile.get("type") == BUILT_IN and spec.meta_value(DERIVED)
        # A group an incremental run reads again for its app count keeps its members when its
        # lastMembershipUpdated is the one the view stored (equality, no clock).
        unchanged = bool(res.profile.get(VALIDATOR)) and validators.get(res.id) == res.profile.get(VALIDATOR)
        if counts.get("usersCount") != 0 and not derived and not unchanged:  # missing count -> fetch; 0 -> nothing to fetch
            out.children.append(members_stream(res.id))
        # expand=stats says whether the group holds an admin role ("hasAdminPrivlege", sic); only those
        # groups' role lists are fetched (all of them when Okta does not say).
        if counts.get("hasAdminPrivlege", counts.get("hasAdminPrivilege")) is not False:
            out.children.append(role.group_roles_stream(res.id))
    each(out, "groups", records(body), one)
    return out


def _group_members(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    ent = member(spec.parent_id).id

    def grant(user: Any) -> Grant | None:
        uid = object_id(user, "group member")
        # Members come as full user objects, so the e-mail filter costs nothing here.
        return Grant(ent, "user", uid) if options.user_allowed(user.get("profile")) else None
    return grants_page(body, "group members", grant)


# ------------------------------------------------------------------------------------ grant / revoke

def get(ctx: ExecContext, gid: str, **kw: Any) -> dict[str, Any] | None:
    return call(ctx, "GET", f"/api/v1/groups/{gid}", PERM_GROUPS, what=kw.pop("what", f"group {gid}"), **kw)


def _is_member(ctx: ExecContext, gid: str, uid: str) -> bool:
    # a clear not-found for the user before listing its groups
    call(ctx, "GET", f"/api/v1/users/{uid}", PERM_GROUPS, what=f"user {uid}")
    return any(g.get("id") == gid for g in list_all(ctx, f"/api/v1/users/{uid}/groups", PERM_GROUPS,
                                                      what=f"user {uid}", params={"limit": 200}))


def _check_editable(group: dict[str, Any], gid: str) -> None:
    gtype = group.get("type")
    if gtype in ("APP_GROUP", "BUILT_IN"):
        raise ProvisionError(
            f"group {gid} is a {gtype} group: Okta does not allow changing its membership "
            f"({'managed by the app that pushes it' if gtype == 'APP_GROUP' else 'a system group'})")


def _membership(grant: bool, ctx: ExecContext, ent: Entitlement, ptype: str, uid: str) -> Outcome:
    """Add (grant=True) or remove a user's membership; `ptype` is always user."""
    gid = ent.resource_id
    group = get(ctx, gid)
    is_member = _is_member(ctx, gid, uid)
    g = Grant(ent.id, "user", uid)
    if grant and is_member:
        return already("granted", g)
    if not grant and not is_member:
        return already("revoked", g)
    _check_editable(group, gid)
    call(ctx, "PUT" if grant else "DELETE", f"/api/v1/groups/{gid}/users/{uid}", PERM_GROUPS,
         what=f"group {gid} or user {uid}")
    change = GrantAdded(g) if grant else GrantRemoved(g)
    return Outcome(f"{'granted' if grant else 'revoked'}: {g.principal} on {ent.id}",
                   changes=[change, counted(gid, 1 if grant else -1)])


# ------------------------------------------------------------------------------------ actions

def _find_own(ctx: ExecContext, name: str) -> dict[str, Any] | None:
    """After a crash between POST /groups and ctx.save: the group this request created, if any."""
    since = (ctx.created_at or datetime.now().astimezone()) - timedelta(seconds=5)
    for g in list_all(ctx, "/api/v1/groups", PERM_GROUPS, params={"q": name, "limit": 200}):
        created = g.get("created")
        if (g.get("profile") or {}).get("name") == name and g.get("type") == "OKTA_GROUP" and created:
            if datetime.fromisoformat(created.replace("Z", "+00:00")) >= since:
                return g
    return None


def create_group(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    """Records the new group's id in the request row (ctx.save) before adding members, so a
    retried request never creates a second group."""
    name, description = args["name"], args.get("description")
    gid = ctx.progress.get("group_id")
    group: dict[str, Any] | None = None
    if gid:
        group = get(ctx, gid, what=f"group {gid} (created earlier)")
    elif ctx.attempt > 1:
        group = _find_own(ctx, name)
    if group is None:
        profile = {"name": name} | ({"description": description} if description is not None else {})
        try:
            group = call(ctx, "POST", "/api/v1/groups", PERM_GROUPS, json={"profile": profile})
        except OktaInvalidRequest as exc:
            if not any("already exists" in c for c in exc.error_causes):
                raise ProvisionError(f"Okta refused the group: {exc.error_summary or exc}"
                                     + (f" ({'; '.join(exc.error_causes)})" if exc.error_causes else "")) from None
            group = _find_own(ctx, name) if ctx.attempt > 1 else None
            if group is None:
                raise ProvisionError(f"a group named {name!r} already exists in Okta") from None
    gid = group["id"]
    ctx.save(group_id=gid)
    joined: list[Any] = []
    added, failed = [], {}
    for uid in args.get("userMembers", []):
        try:
            call(ctx, "PUT", f"/api/v1/groups/{gid}/users/{uid}", PERM_GROUPS, what=f"user {uid}")
            added.append(uid)
            joined.append(GrantAdded(Grant(member(gid).id, "user", uid)))
        except (NotFound, ProvisionError, OktaInvalidRequest, OktaNotFound, OktaPermissionDenied) as exc:
            failed[uid] = str(exc)
    # A new group: no app yet, the members just added (stats a sync reads with expand=stats).
    changes = [saved({**group, "_embedded": {"stats": {"usersCount": len(added), "appsCount": 0}}}), *joined]
    details = {"group_id": gid, "members_added": added, "members_failed": failed}
    result = Outcome(f"group {gid} {name!r} created with {len(added)} member(s)", details, changes)
    if failed:
        raise PartialFailure(
            f"group {gid} {name!r} created, but {len(failed)} member(s) could not be added: "
            + "; ".join(f"{u}: {m}" for u, m in failed.items()), result)
    return result


def modify_group(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    gid = args["group_id"]
    group = get(ctx, gid)
    if group.get("type") != "OKTA_GROUP":
        raise ProvisionError(f"group {gid} is a {group.get('type')} group: only OKTA_GROUP groups can be modified")
    profile = dict(group.get("profile") or {})
    wanted = {k: args[k] for k in ("name", "description") if k in args}
    if all(profile.get(k) == v for k, v in wanted.items()):
        return Outcome(f"group {gid} already has that name and description; nothing to do", {"already": True})
    profile.update(wanted)  # the full profile: custom attributes are kept
    updated = call(ctx, "PUT", f"/api/v1/groups/{gid}", PERM_GROUPS, json={"profile": profile},
                   what=f"group {gid}")
    return Outcome(f"group {gid} updated ({', '.join(wanted)})", {"group_id": gid},
                   [saved(updated or {**group, "profile": profile}, keep_counts=True)])


def _check_modify(args: dict[str, Any]) -> str | None:
    if "name" not in args and "description" not in args:
        return "action 'modify_group' needs at least one of name, description"
    return None


def delete_group(ctx: ExecContext, gid: str) -> Outcome:
    """Records that it started, so a retry that finds the group gone reports "already deleted"."""
    group = get(ctx, gid, absent_ok=bool(ctx.progress.get("deleting")))
    gone = ResourceRemoved(key(gid))
    if group is None:  # this request's earlier attempt deleted it
        return Outcome(f"group {gid} already deleted", {"already": True}, [gone])
    gtype = group.get("type")
    if gtype in ("BUILT_IN", "APP_GROUP"):
        raise ProvisionError(
            f"group {gid} ({(group.get('profile') or {}).get('name')!r}) is a {gtype} group and cannot be "
            f"deleted: {'it is a system group' if gtype == 'BUILT_IN' else 'it is managed by the app that pushes it'}")
    ctx.save(deleting=True)
    call(ctx, "DELETE", f"/api/v1/groups/{gid}", PERM_GROUPS, what=f"group {gid}", absent_ok=True)
    return Outcome(f"group {gid} deleted", {"group_id": gid}, [gone])


# ------------------------------------------------------------------------------------ probes

def _probes(client: Any) -> dict[str, Capability]:
    out: dict[str, Capability] = {}
    groups: list = []

    def read_groups() -> None:  # one list read, then one member list of a real group
        groups.extend(client.get("/api/v1/groups", {"limit": 20}) or [])
        if groups:
            client.get(f"/api/v1/groups/{groups[0]['id']}/users", {"limit": 1})
    out["review group membership"] = capability(
        "review group membership", "GET /api/v1/groups, GET /api/v1/groups/{id}/users", read_groups)

    okta_group = next((g["id"] for g in groups if g.get("type") == "OKTA_GROUP"), None)
    if okta_group:
        ok, detail = outcome(
            lambda: client.request("PUT", f"/api/v1/groups/{okta_group}/users/{PROBE_USER}"), (OktaNotFound,))
        how = "PUT /api/v1/groups/{an Okta group}/users/{nonexistent user}"
    else:
        ok, detail = None, "could not tell: no OKTA_GROUP group readable to probe with"
        how = "needs a readable OKTA_GROUP group"
    out["provision group membership"] = Capability("provision group membership", ok, how, detail)

    # `create group` is probed with a profile without a name, which Okta refuses with 400 E0000001.
    out["create group"] = capability(
        "create group", "POST /api/v1/groups with a profile without a name",
        lambda: client.request("POST", "/api/v1/groups", json={"profile": {}}), (OktaInvalidRequest,))
    out["modify group"] = capability(
        "modify group", "PUT /api/v1/groups/{nonexistent group}",
        lambda: client.request("PUT", f"/api/v1/groups/{PROBE_GROUP}",
                               json={"profile": {"name": "oktasync capability probe"}}), (OktaNotFound,))
    out["delete group"] = capability(
        "delete group", "DELETE /api/v1/groups/{nonexistent group}",
        lambda: client.request("DELETE", f"/api/v1/groups/{PROBE_GROUP}"), (OktaNotFound,))
    return out



# ------------------------------------------------------------------------------------ changes

_RECOUNT_CLAUSE = re.compile(r'^id eq "([^"]+)"$')


def recount(gid: str) -> tuple[str, str]:
    """The `also` clause of a group whose app count changed (expand=stats) without Okta moving its
    timestamps: the incremental groups list returns it too."""
    return GROUPS, f'id eq "{gid}"'


def _changed_groups(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    # Groups whose profile or members changed (or events named); the list opens their member and role lists.
    query = q(" or ".join((f'lastUpdated gt "{since}"', f'lastMembershipUpdated gt "{since}"', *also)))
    ids = [m.group(1) for c in also if (m := _RECOUNT_CLAUSE.match(c))]
    return [StreamSpec(GROUPS, f"/api/v1/groups?expand=stats&limit={GROUPS_LIMIT}&filter={query}",
                       meta=((DERIVED, "1"), *([(RECOUNT, ",".join(ids))] if ids else [])))]


def _validate(specs: list[StreamSpec], view: View) -> tuple[list[StreamSpec], list[Validated]]:
    """Attach the view's lastMembershipUpdated of the groups read for their app count only, and
    keep the member lists membership events opened only for groups of the view (a new group, or
    one skip_app_groups leaves out, is for the groups list to judge) other than Everyone
    (derived), largest first: a big group's sequential pages are the run's longest path."""
    members = {s.parent: s for s in specs if s.kind == GROUP_MEMBERS}
    if members:
        kinds = view.values(members, "type")
        sizes = view.values(members, "users_count")
        keep = sorted((k for k, t in kinds.items() if t != BUILT_IN), key=lambda k: -int(sizes.get(k) or 0))
        specs = [*(members[k] for k in keep), *(s for s in specs if s.kind != GROUP_MEMBERS)]
    out, validated = [], []
    for spec in specs:
        ids = [i for i in spec.meta_value(RECOUNT).split(",") if i] if spec.kind == GROUPS else []
        stored = view.values([key(i) for i in ids], VALIDATOR) if ids else {}
        if stored:
            by_id = {k.partition(":")[2]: v for k, v in sorted(stored.items())}
            spec = dataclasses.replace(spec, meta=(*spec.meta, (VALIDATORS, json.dumps(by_id, sort_keys=True))))
            validated += [Validated(container_key(GROUP_MEMBERS, key(i)), key(i), VALIDATOR, v) for i, v in by_id.items()]
        out.append(spec)
    return out, validated


def _derived(find: FindResources) -> list[DerivedMembers]:
    """Everyone's members are every user (Okta: users are never removed from it, deactivated ones
    included; a create does not move its lastMembershipUpdated), so an incremental run gives each
    user it stages the membership instead of re-listing Everyone (20 pages per 20,000 users)."""
    return [DerivedMembers(container_key(GROUP_MEMBERS, key), member(key.partition(":")[2]).id)
            for key in find(NAME, "type", BUILT_IN)]


MEMBERSHIP_EVENTS = ("group.user_membership.add", "group.user_membership.remove")


def members_stream(gid: str) -> StreamSpec:
    return StreamSpec(GROUP_MEMBERS, f"/api/v1/groups/{q(gid)}/users?limit={GROUP_USERS_LIMIT}", key(gid),
                      headers=OMIT_CREDENTIALS)


def _group_dirty(event: Any, options: SyncOptions) -> Dirty:
    if event.get("eventType") in MEMBERSHIP_EVENTS:
        # The filtered groups list would open this member list too (lastMembershipUpdated moved),
        # but only once its own page is back; opening it with the run's first lists takes that
        # wait off the critical path of a big group's sequential pages. It also covers
        # memberships written without moving the timestamp (reference §1.1: OKTA-90593, directory imports).
        return Dirty(streams=tuple(members_stream(gid) for gid in event_targets(event, "UserGroup")))
    return Dirty(deleted=tuple(key(gid) for gid in event_targets(event, "UserGroup")))


TYPE = ResourceType(
    NAME,
    streams=(
        Stream(GROUPS, "groups", "okta.groups.read (an admin role that can view groups)", _groups),
        Stream(GROUP_MEMBERS, "group members",
               "okta.groups.read (an admin role that can view group members)", _group_members),
    ),
    initial_streams=_initial_streams,
    grant=functools.partial(_membership, True),
    revoke=functools.partial(_membership, False),
    actions=(
        Action("create", {"name": Arg("str", True, 255), "description": Arg("str"), "userMembers": Arg("list")},
               create_group),
        Action("modify_group", {"group_id": Arg("str", True), "name": Arg("str", False, 255),
                                "description": Arg("str")}, modify_group, _check_modify,
               note="needs at least one of name, description"),
    ),
    delete=delete_group,
    probes=_probes,
    changes=ChangeSources(lists=_changed_groups, partial=(GROUPS,),
                          event_types=("group.lifecycle.delete", *MEMBERSHIP_EVENTS),
                          spec_for=lambda kind, parent: members_stream(parent.partition(":")[2])
                          if kind == GROUP_MEMBERS else None,
                          dirty=_group_dirty, children=(GROUP_MEMBERS, role.GROUP_ROLES), derived=_derived,
                          validate=_validate),
    container_of=lambda item: (container_key(GROUP_MEMBERS, key(parse_entitlement_id(item.entitlement_id).resource_id))
                               if isinstance(item, Grant) else container_key(GROUPS, None)),
)
