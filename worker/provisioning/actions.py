"""Connector actions, account creation and resource deletes (baton-okta §3.1, §3.2, §4).

Each reads the object's current state first, so a second run is a no-op with a clear message.
`create` records the new group's id in the request row (ctx.save) before adding members, so a
retried request never creates a second group; deletes record that they started so a retry that
finds the object gone reports "already deleted" instead of not-found.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from worker.okta.errors import OktaInvalidRequest, OktaNotFound, OktaPermissionDenied
from worker.provisioning.context import (
    PERM_GROUPS,
    PERM_USERS,
    Change,
    ExecContext,
    Outcome,
    call,
    list_all,
)
from worker.provisioning.errors import NotFound, ProvisionError, RetryLater

ENABLED_STATUSES = ("ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT")


class PartialFailure(ProvisionError):
    """Part of the request happened (e.g. the group exists) and part failed: both are recorded."""

    def __init__(self, message: str, outcome: Outcome):
        super().__init__(message)
        self.outcome = outcome


def _user_change(user: dict[str, Any], status: str | None = None) -> Change:
    """The user as the store should now show it (mapped like a sync would map it)."""
    return Change("user+", {"user": {**user, "status": status or user.get("status")}})


def _get_user(ctx: ExecContext, uid: str, absent_ok: bool = False) -> dict[str, Any] | None:
    return call(ctx, "GET", f"/api/v1/users/{uid}", PERM_USERS, what=f"user {uid}", absent_ok=absent_ok)


def _lifecycle(ctx: ExecContext, uid: str, op: str) -> None:
    try:
        call(ctx, "POST", f"/api/v1/users/{uid}/lifecycle/{op}", PERM_USERS, what=f"user {uid}")
    except OktaInvalidRequest as exc:
        raise ProvisionError(f"Okta refused to {op.split('?')[0]} user {uid}: "
                             f"{exc.error_summary or exc}") from None


def enable_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    user = _get_user(ctx, uid)
    status = user["status"]
    if status in ENABLED_STATUSES:
        return Outcome(f"user {uid} is already enabled ({status}); nothing to do", {"already": True})
    if status == "DEPROVISIONED":
        raise ProvisionError(f"user {uid} is DEPROVISIONED (deactivated): enable_user only activates "
                             f"STAGED and unsuspends SUSPENDED users; reactivate it in Okta first")
    if status == "STAGED":
        _lifecycle(ctx, uid, "activate?sendEmail=false")
    elif status == "SUSPENDED":
        _lifecycle(ctx, uid, "unsuspend")
    else:
        raise ProvisionError(f"user {uid} has status {status}, which enable_user cannot change")
    user = _get_user(ctx, uid)
    new = user["status"]
    return Outcome(f"user {uid} enabled ({status} -> {new})", {"status": new}, [_user_change(user)])


def disable_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    user = _get_user(ctx, uid)
    status = user["status"]
    if status not in ENABLED_STATUSES:
        return Outcome(f"user {uid} is already disabled ({status}); nothing to do", {"already": True})
    _lifecycle(ctx, uid, "suspend")
    return Outcome(f"user {uid} suspended ({status} -> SUSPENDED)", {"status": "SUSPENDED"},
                   [_user_change(user, "SUSPENDED")])


def _group_resource(group: dict[str, Any]) -> Change:
    return Change("group+", {"group": group})


def _find_own_group(ctx: ExecContext, name: str) -> dict[str, Any] | None:
    """After a crash between POST /groups and ctx.save: the group this request created, if any."""
    since = (ctx.created_at or datetime.now().astimezone()) - timedelta(seconds=5)
    for g in list_all(ctx, "/api/v1/groups", PERM_GROUPS, params={"q": name, "limit": 200}):
        created = g.get("created")
        if (g.get("profile") or {}).get("name") == name and g.get("type") == "OKTA_GROUP" and created:
            if datetime.fromisoformat(created.replace("Z", "+00:00")) >= since:
                return g
    return None


def create_group(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    name, description = args["name"], args.get("description")
    gid = ctx.progress.get("group_id")
    group: dict[str, Any] | None = None
    if gid:
        group = call(ctx, "GET", f"/api/v1/groups/{gid}", PERM_GROUPS, what=f"group {gid} (created earlier)")
    elif ctx.attempt > 1:
        group = _find_own_group(ctx, name)
    if group is None:
        profile = {"name": name} | ({"description": description} if description is not None else {})
        try:
            group = call(ctx, "POST", "/api/v1/groups", PERM_GROUPS, json={"profile": profile})
        except OktaInvalidRequest as exc:
            if not any("already exists" in c for c in exc.error_causes):
                raise ProvisionError(f"Okta refused the group: {exc.error_summary or exc}"
                                     + (f" ({'; '.join(exc.error_causes)})" if exc.error_causes else "")) from None
            group = _find_own_group(ctx, name) if ctx.attempt > 1 else None
            if group is None:
                raise ProvisionError(f"a group named {name!r} already exists in Okta") from None
    gid = group["id"]
    ctx.save(group_id=gid)
    changes = [_group_resource(group)]
    added, failed = [], {}
    for uid in args.get("userMembers", []):
        try:
            call(ctx, "PUT", f"/api/v1/groups/{gid}/users/{uid}", PERM_GROUPS, what=f"user {uid}")
            added.append(uid)
            changes.append(Change("grant+", {"entitlement": f"group:{gid}:member", "principal_type": "user",
                                             "principal_id": uid, "annotations": {}}))
        except (NotFound, ProvisionError, OktaInvalidRequest, OktaNotFound, OktaPermissionDenied) as exc:
            failed[uid] = str(exc)
    details = {"group_id": gid, "members_added": added, "members_failed": failed}
    outcome = Outcome(f"group {gid} {name!r} created with {len(added)} member(s)", details, changes)
    if failed:
        raise PartialFailure(
            f"group {gid} {name!r} created, but {len(failed)} member(s) could not be added: "
            + "; ".join(f"{u}: {m}" for u, m in failed.items()), outcome)
    return outcome


def modify_group(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    gid = args["group_id"]
    group = call(ctx, "GET", f"/api/v1/groups/{gid}", PERM_GROUPS, what=f"group {gid}")
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
                   [_group_resource(updated or {**group, "profile": profile})])


def delete_group(ctx: ExecContext, gid: str) -> Outcome:
    group = call(ctx, "GET", f"/api/v1/groups/{gid}", PERM_GROUPS, what=f"group {gid}",
                 absent_ok=bool(ctx.progress.get("deleting")))
    gone = Change("resource-", {"resource": f"group:{gid}"})
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


def deactivate_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    status = _get_user(ctx, uid)["status"]
    if status == "DEPROVISIONED":
        return Outcome(f"user {uid} is already deactivated", {"already": True})
    _lifecycle(ctx, uid, "deactivate?sendEmail=false")
    user = _get_user(ctx, uid)
    if user["status"] != "DEPROVISIONED":
        raise RetryLater(f"user {uid} is still being deactivated", countdown=1)
    return Outcome(f"user {uid} deactivated ({status} -> DEPROVISIONED)", {"status": "DEPROVISIONED"},
                   [_user_change(user)])


def delete_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    gone = Change("resource-", {"resource": f"user:{uid}"})
    user = _get_user(ctx, uid, absent_ok=True)
    if user is None:
        return Outcome(f"user {uid} does not exist (already deleted)", {"already": True}, [gone])
    if user["status"] != "DEPROVISIONED":
        _lifecycle(ctx, uid, "deactivate?sendEmail=false")
        if (_get_user(ctx, uid, absent_ok=True) or {}).get("status") != "DEPROVISIONED":
            raise RetryLater(f"user {uid} is still being deactivated", countdown=1)
    for _ in range(2):  # baton-okta allows one more DELETE if the user is still DEPROVISIONED
        call(ctx, "DELETE", f"/api/v1/users/{uid}", PERM_USERS, what=f"user {uid}", absent_ok=True)
        if _get_user(ctx, uid, absent_ok=True) is None:
            return Outcome(f"user {uid} deactivated and deleted", {"user_id": uid}, [gone])
    raise RetryLater(f"user {uid} still exists after DELETE", countdown=1)


def _is_duplicate_login(exc: OktaInvalidRequest) -> bool:
    return exc.error_code == "E0000001" and any(
        c.lower().startswith("login") and "already exists" in c.lower() for c in exc.error_causes)




def create_account(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    login = args.get("login") or args["email"]
    profile = dict(args.get("additionalAttributes") or {})
    profile.update(firstName=args["first_name"], lastName=args["last_name"], email=args["email"], login=login)
    inactive = args.get("create_inactive", False)
    send_email = args.get("send_activation_email", True)
    activate_now = not inactive and send_email
    uid = ctx.progress.get("user_id")
    existed = False
    if uid is None:
        try:
            user = call(ctx, "POST", "/api/v1/users", PERM_USERS, json={"profile": profile},
                        params={"activate": "true" if activate_now else "false"})
        except OktaInvalidRequest as exc:
            if not _is_duplicate_login(exc):
                raise ProvisionError(f"Okta refused the account: {exc.error_summary or exc}"
                                     + (f" ({'; '.join(exc.error_causes)})" if exc.error_causes else "")) from None
            user = _get_user(ctx, login)
            created = user.get("created")
            mine = ctx.attempt > 1 and created and ctx.created_at and datetime.fromisoformat(
                created.replace("Z", "+00:00")) >= ctx.created_at - timedelta(seconds=5)
            if not mine:  # someone else's account: leave its lifecycle alone (baton-okta)
                return Outcome(f"account {login} already exists (user {user['id']}); nothing changed",
                               {"already": True, "user_id": user["id"]}, [_user_change(user)])
            existed = True
        uid = user["id"]
        ctx.save(user_id=uid)
    else:
        user = _get_user(ctx, uid)
    if not inactive and not send_email and user.get("status") == "STAGED":
        _lifecycle(ctx, uid, "activate?sendEmail=false")
        user = _get_user(ctx, uid)
    note = " (recovered after a retry)" if existed else ""
    return Outcome(f"account {login} created as user {uid} ({user.get('status')}){note}",
                   {"user_id": uid, "status": user.get("status")}, [_user_change(user)])


ACTION_EXECUTORS = {
    "enable_user": enable_user,
    "disable_user": disable_user,
    "create": create_group,
    "modify_group": modify_group,
    "create_account": create_account,
    "deactivate_user": deactivate_user,
    "delete_user": delete_user,
}


def run_action(ctx: ExecContext, payload: dict[str, Any]) -> Outcome:
    return ACTION_EXECUTORS[payload["action"]](ctx, payload["args"])


def run_delete(ctx: ExecContext, payload: dict[str, Any]) -> Outcome:
    if payload["resource_type"] == "group":
        return delete_group(ctx, payload["resource_id"])
    return delete_user(ctx, {"user_id": payload["resource_id"]})
