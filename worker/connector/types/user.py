"""Users: the users list, the user resource, the user lifecycle actions, account creation and
deletion, and the check that the credentials can read users at all (baton-okta user.go,
user_actions.go; reference/baton-okta.md §1.1, §3.1, §4)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec, each, object_id, q, records, text
from worker.connector.probes import PROBE_USER, Capability, CredentialsRejected, ProbeFailed, capability
from worker.connector.system_log import LogUnavailable, get_waiting, parse_time
from worker.connector.types import app
from worker.connector.types.base import (
    OMIT_CREDENTIALS,
    Action,
    Arg,
    ChangeSources,
    Dirty,
    ResourceType,
    Screened,
    Stream,
    View,
    event_targets,
)
from worker.model import (
    Change,
    CountChanged,
    Grant,
    GrantAdded,
    Resource,
    ResourceRemoved,
    ResourceSaved,
    container_key,
    entitlement_of,
    resource_key,
)
from worker.okta.errors import (
    OktaAuthenticationError,
    OktaError,
    OktaInvalidRequest,
    OktaNotFound,
    OktaPermissionDenied,
)
from worker.provisioning.context import PERM_USERS, ExecContext, Outcome, call, list_all
from worker.provisioning.errors import ProvisionError, RetryLater

NAME = "user"
USERS = "users"  # stream kind

USERS_LIMIT = 200  # /users: max 200 (reference/okta-api.md §3.2)

ENABLED_STATUSES = ("ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT")
_DISABLED = frozenset({"STAGED", "SUSPENDED", "DEPROVISIONED"})
_EMPLOYEE_ID_KEYS = frozenset({
    "employeenumber", "employeeid", "employeeidnumber", "employee_number", "employee_id", "employee_idnumber",
})


def key(uid: str) -> str:
    return resource_key(NAME, uid)


# ------------------------------------------------------------------------------------ mapping

def status(okta_status: Any) -> str:
    if okta_status in ENABLED_STATUSES:
        return "enabled"
    if okta_status in _DISABLED:
        return "disabled"
    return "unspecified"


def display_name(profile: Mapping[str, Any]) -> str:
    name = profile.get("displayName")
    if isinstance(name, str) and name:
        return name
    first = profile.get("firstName") or "unknown"
    last = profile.get("lastName") or "unknown"
    return f"{first} {last}"


def resource(user: Mapping[str, Any], skip_secondary_emails: bool = False) -> Resource:
    uid = object_id(user, "user")
    profile = dict(user["profile"]) if isinstance(user.get("profile"), Mapping) else {}
    if skip_secondary_emails and "secondEmail" in profile:
        profile["secondEmail"] = None  # baton-okta nulls it rather than dropping the key
    emails = []
    if text(profile.get("email")):
        emails.append({"address": profile["email"], "primary": True})
    if text(profile.get("secondEmail")):
        emails.append({"address": profile["secondEmail"], "primary": False})
    user_type = user.get("type") if isinstance(user.get("type"), Mapping) else {}
    login = text(profile.get("login"))
    aliases = [login.split("@")[0]] if login and login.count("@") == 1 else []
    employee_ids = [str(v) for k, v in profile.items()
                    if k.lower() in _EMPLOYEE_ID_KEYS and v not in (None, "")]
    data = {
        "status": status(user.get("status")),
        "okta_status": user.get("status"),
        "login": login,
        "login_aliases": aliases,
        "emails": emails,
        "employee_ids": employee_ids,
        "last_login": user.get("lastLogin"),
        "created": user.get("created"),
        # What a reviewer looks at besides the status: when it last changed, when the user or the
        # password last changed, the kind of user and who the manager is.
        "status_changed": user.get("statusChanged"),
        "last_updated": user.get("lastUpdated"),
        "password_changed": user.get("passwordChanged"),
        "user_type": profile.get("userType"),
        "user_type_id": user_type.get("id"),
        "manager": profile.get("manager"),
        "manager_id": profile.get("managerId"),
        "okta_profile": profile,
    }
    return Resource(NAME, uid, display_name(profile), data)


# ------------------------------------------------------------------------------------ streams

def users_url() -> str:
    # search=status pr ("status present") is what includes DEPROVISIONED users.
    return f"/api/v1/users?search=status+pr&limit={USERS_LIMIT}"


def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(USERS, users_url(), headers=OMIT_CREDENTIALS)]


def _users(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    items = records(body)
    # Only the first page can tell: a later page may be empty when the user count is a multiple of
    # the page size. The engine passes the spec with url = the page's URL (a cursor has after=).
    if not items and "after=" not in spec.url:
        # An org always has at least one user (its admin). An OAuth service app without an admin role
        # gets 200 and an empty list instead of 403 (baton-okta reports that as a successful sync).
        out.warnings.append(
            "Okta returned no users: the org always has at least its admin, so these credentials probably "
            "lack an admin role that can view users (e.g. an OAuth service app without an admin role); "
            "users and their grants are missing from this run")

    def one(user: Any) -> None:
        res = resource(user, options.skip_secondary_emails)
        # The filter still reads secondEmail with --skip-secondary-emails (baton-okta §8.1).
        if options.user_allowed(user.get("profile")):
            out.resources.append(res)
    each(out, "users", items, one)
    return out


# ------------------------------------------------------------------------------------ actions

def saved(ctx: ExecContext, user: dict[str, Any]) -> ResourceSaved | ResourceRemoved:
    """The user as the store should now show it, mapped with the tenant's options as a sync would
    map it: without the second email under skip_secondary_emails, and not at all (removed, with its
    grants) when the e-mail domain filter leaves it out."""
    if not ctx.options.user_allowed(user.get("profile")):
        return ResourceRemoved(key(object_id(user, "user")))
    return ResourceSaved(resource(user, ctx.options.skip_secondary_emails))


def lifecycle_changes(ctx: ExecContext, user: dict[str, Any]) -> list[Change]:
    """A user whose status changed, and their app assignments' status, which follows it."""
    return [saved(ctx, user), app.user_status_changed(object_id(user, "user"), user.get("status"))]


def _group_ids(ctx: ExecContext, uid: str) -> list[str]:
    """The groups Okta lists the user in (Everyone included)."""
    return [str(g["id"]) for g in list_all(ctx, f"/api/v1/users/{uid}/groups", PERM_USERS, what=f"user {uid}",
                                           params={"limit": 200}) if isinstance(g, Mapping) and g.get("id")]


def _joined(uid: str, group_ids: list[str]) -> list[Change]:
    """A new user's memberships (Everyone's at least), as the groups' member lists will show them."""
    out: list[Change] = []
    for gid in group_ids:
        out += [GrantAdded(Grant(entitlement_of("group", gid).id, NAME, uid)),
                CountChanged(resource_key("group", gid), "users_count", 1)]
    return out


def get(ctx: ExecContext, uid: str, absent_ok: bool = False) -> dict[str, Any] | None:
    return call(ctx, "GET", f"/api/v1/users/{uid}", PERM_USERS, what=f"user {uid}", absent_ok=absent_ok)


def _lifecycle(ctx: ExecContext, uid: str, op: str) -> None:
    try:
        call(ctx, "POST", f"/api/v1/users/{uid}/lifecycle/{op}", PERM_USERS, what=f"user {uid}")
    except OktaInvalidRequest as exc:
        raise ProvisionError(f"Okta refused to {op.split('?')[0]} user {uid}: "
                             f"{exc.error_summary or exc}") from None


def enable_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    user = get(ctx, uid)
    was = user["status"]
    if was in ENABLED_STATUSES:
        return Outcome(f"user {uid} is already enabled ({was}); nothing to do", {"already": True})
    if was == "DEPROVISIONED":
        raise ProvisionError(f"user {uid} is DEPROVISIONED (deactivated): enable_user only activates "
                             f"STAGED and unsuspends SUSPENDED users; reactivate it in Okta first")
    if was == "STAGED":
        _lifecycle(ctx, uid, "activate?sendEmail=false")
    elif was == "SUSPENDED":
        _lifecycle(ctx, uid, "unsuspend")
    else:
        raise ProvisionError(f"user {uid} has status {was}, which enable_user cannot change")
    user = get(ctx, uid)
    new = user["status"]
    return Outcome(f"user {uid} enabled ({was} -> {new})", {"status": new}, lifecycle_changes(ctx, user))


def disable_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    user = get(ctx, uid)
    was = user["status"]
    if was not in ENABLED_STATUSES:
        return Outcome(f"user {uid} is already disabled ({was}); nothing to do", {"already": True})
    _lifecycle(ctx, uid, "suspend")
    # Read again: the view shows the status and its timestamps as the next sync reads them.
    user = get(ctx, uid, absent_ok=True) or {**user, "status": "SUSPENDED"}
    return Outcome(f"user {uid} suspended ({was} -> {user['status']})", {"status": user["status"]},
                   lifecycle_changes(ctx, user))


def deactivate_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    was = get(ctx, uid)["status"]
    if was == "DEPROVISIONED":
        return Outcome(f"user {uid} is already deactivated", {"already": True})
    _lifecycle(ctx, uid, "deactivate?sendEmail=false")
    user = get(ctx, uid)
    if user["status"] != "DEPROVISIONED":
        raise RetryLater(f"user {uid} is still being deactivated", countdown=1)
    return Outcome(f"user {uid} deactivated ({was} -> DEPROVISIONED)", {"status": "DEPROVISIONED"},
                   lifecycle_changes(ctx, user))


def delete_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    uid = args["user_id"]
    gone = ResourceRemoved(key(uid))
    user = get(ctx, uid, absent_ok=True)
    if user is None:  # an earlier attempt of this request may have deleted it: the groups it left then
        left = [CountChanged(resource_key("group", gid), "users_count", -1) for gid in ctx.progress.get("groups", [])]
        return Outcome(f"user {uid} does not exist (already deleted)", {"already": True}, [gone, *left])
    if "groups" not in ctx.progress:  # the memberships the delete ends, recorded for a retry after it
        ctx.save(groups=_group_ids(ctx, uid))
    left = [CountChanged(resource_key("group", gid), "users_count", -1) for gid in ctx.progress["groups"]]
    if user["status"] != "DEPROVISIONED":
        _lifecycle(ctx, uid, "deactivate?sendEmail=false")
        if (get(ctx, uid, absent_ok=True) or {}).get("status") != "DEPROVISIONED":
            raise RetryLater(f"user {uid} is still being deactivated", countdown=1)
    for _ in range(2):  # baton-okta allows one more DELETE if the user is still DEPROVISIONED
        call(ctx, "DELETE", f"/api/v1/users/{uid}", PERM_USERS, what=f"user {uid}", absent_ok=True)
        if get(ctx, uid, absent_ok=True) is None:
            return Outcome(f"user {uid} deactivated and deleted", {"user_id": uid}, [gone, *left])
    raise RetryLater(f"user {uid} still exists after DELETE", countdown=1)


def _refused(what: str, exc: OktaInvalidRequest) -> ProvisionError:
    """Okta's validation error with its causes (which field, which rule): what a user must fix."""
    causes = f" ({'; '.join(exc.error_causes)})" if exc.error_causes else ""
    return ProvisionError(f"Okta refused {what}: {exc.error_summary or exc}{causes}")


def _is_duplicate_login(exc: OktaInvalidRequest) -> bool:
    return exc.error_code == "E0000001" and any(
        c.lower().startswith("login") and "already exists" in c.lower() for c in exc.error_causes)


PASSWORD_CHOICES = ("none", "random")  # baton-okta's NO_PASSWORD and RANDOM_PASSWORD credential options
PROVIDER_TYPES = ("OKTA", "FEDERATION")
_RANDOM_PASSWORD_LENGTH = 24  # baton-okta caps its random password at 8 (a min() that meant max)


def random_password() -> str:
    """A password Okta's default policy accepts (lower, upper, digit); shown to no one, kept nowhere:
    the user sets their own through recovery or the change at next login."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(_RANDOM_PASSWORD_LENGTH))
        if any(c.islower() for c in pw) and any(c.isupper() for c in pw) and any(c.isdigit() for c in pw):
            return pw


def _create_body(args: dict[str, Any], login: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The POST /api/v1/users body and query for the account options (baton-okta §3.1):
    create_inactive wins (STAGED); send_activation_email=false creates inactive and activates
    afterwards without the e-mail; a random password with the change at next login expires it."""
    profile = dict(args.get("additionalAttributes") or {})
    profile.update(firstName=args["first_name"], lastName=args["last_name"], email=args["email"], login=login)
    body: dict[str, Any] = {"profile": profile}
    params: dict[str, str] = {}
    credentials: dict[str, Any] = {}
    if args.get("password", "none") == "random":
        credentials["password"] = {"value": random_password()}
    if args.get("provider_type") == "FEDERATION":
        credentials["provider"] = {"type": "FEDERATION", "name": "FEDERATION"}
        params["provider"] = "true"
    if credentials:
        body["credentials"] = credentials
    inactive = args.get("create_inactive", False)
    activate_now = not inactive and args.get("send_activation_email", True)
    if not inactive and "password" in credentials and args.get("password_change_on_login_required"):
        params["nextLogin"] = "changePassword"
        activate_now = True  # Okta expires the password only on an activated user; no e-mail goes out
    params["activate"] = "true" if activate_now else "false"
    return body, params


def create_account(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    login = args.get("login") or args["email"]
    inactive = args.get("create_inactive", False)
    uid = ctx.progress.get("user_id")
    existed = False
    if uid is None:
        body, params = _create_body(args, login)
        try:
            user = call(ctx, "POST", "/api/v1/users", PERM_USERS, json=body, params=params)
        except OktaInvalidRequest as exc:
            if not _is_duplicate_login(exc):
                raise _refused("the account", exc) from None
            user = get(ctx, login)
            created = user.get("created")
            mine = ctx.attempt > 1 and created and ctx.created_at and datetime.fromisoformat(
                created.replace("Z", "+00:00")) >= ctx.created_at - timedelta(seconds=5)
            if not mine:  # someone else's account: leave its lifecycle alone (baton-okta)
                return Outcome(f"account {login} already exists (user {user['id']}); nothing changed",
                               {"already": True, "user_id": user["id"]}, [saved(ctx, user)])
            existed = True
        uid = user["id"]
        ctx.save(user_id=uid)
    else:
        user = get(ctx, uid)
    if not inactive and not args.get("send_activation_email", True) and user.get("status") == "STAGED":
        _lifecycle(ctx, uid, "activate?sendEmail=false")
        user = get(ctx, uid)
    note = " (recovered after a retry)" if existed else ""
    changes = [saved(ctx, user)]
    if isinstance(changes[0], ResourceSaved):  # a user the e-mail filter keeps: its memberships too
        changes += _joined(uid, _group_ids(ctx, uid))
    return Outcome(f"account {login} created as user {uid} ({user.get('status')}){note}",
                   {"user_id": uid, "status": user.get("status")}, changes)


def _check_account(args: dict[str, Any]) -> str | None:
    if "@" not in args["email"]:
        return f"action 'create_account': email {args['email']!r} is not an email address"
    clash = {"firstName", "lastName", "email", "login"} & set(args.get("additionalAttributes") or {})
    if clash:
        return f"action 'create_account': additionalAttributes may not set {', '.join(sorted(clash))}"
    password = args.get("password", "none")
    if args.get("provider_type") == "FEDERATION" and password == "random":
        return "action 'create_account': a FEDERATION user signs in elsewhere and cannot get a random password"
    if args.get("password_change_on_login_required") and password != "random":
        return "action 'create_account': password_change_on_login_required needs password=random"
    return None


# Profile fields update_user sets by name (baton-okta's update_profile); others go in additionalAttributes.
PROFILE_FIELDS = ("login", "email", "secondEmail", "firstName", "lastName", "middleName", "displayName", "title",
                  "department", "division", "organization", "employeeNumber", "costCenter", "userType",
                  "primaryPhone", "mobilePhone", "countryCode", "managerId")


def update_user(ctx: ExecContext, args: dict[str, Any]) -> Outcome:
    """POST /api/v1/users/{id} with the given profile fields (Okta merges them into the profile)."""
    uid = args["user_id"]
    changes = {**(args.get("additionalAttributes") or {}), **{k: args[k] for k in PROFILE_FIELDS if k in args}}
    try:
        user = call(ctx, "POST", f"/api/v1/users/{uid}", PERM_USERS, json={"profile": changes}, what=f"user {uid}")
    except OktaInvalidRequest as exc:
        raise _refused(f"the profile update of user {uid}", exc) from None
    return Outcome(f"user {uid} updated ({', '.join(sorted(changes))})",
                   {"user_id": uid, "updated_fields": sorted(changes)}, [saved(ctx, user)])


def _check_update(args: dict[str, Any]) -> str | None:
    if not any(k in args for k in PROFILE_FIELDS) and not args.get("additionalAttributes"):
        return f"action 'update_user': give at least one profile field ({', '.join(PROFILE_FIELDS)})"
    clash = set(PROFILE_FIELDS) & set(args.get("additionalAttributes") or {})
    if clash:
        return f"action 'update_user': set {', '.join(sorted(clash))} by name, not in additionalAttributes"
    return None


def _delete(ctx: ExecContext, uid: str) -> Outcome:
    return delete_user(ctx, {"user_id": uid})


# ------------------------------------------------------------------------------------ probes

def users_readable(client: Any) -> tuple[bool | None, str]:
    """Whether the users list is readable and non-empty (an OAuth app without an admin role gets []).

    The first probe: CredentialsRejected when the credentials do not work at all, ProbeFailed when
    the org cannot be asked."""
    try:
        users = client.get("/api/v1/users", {"limit": 1})
    except OktaAuthenticationError as exc:
        raise CredentialsRejected(exc) from None
    except OktaPermissionDenied as exc:
        return False, f"denied: {exc.error_code or ''}".strip()
    except OktaError as exc:
        # Unreachable, 5xx, rate limited after retries: nothing else would answer either.
        raise ProbeFailed(exc) from None
    if not users:
        return False, ("Okta returned no users: the credentials probably lack an admin role "
                       "(an OAuth service app needs one besides its scopes)")
    return True, "allowed"


def _probes(client: Any) -> dict[str, Capability]:
    """Account creation and profile updates, probed with requests Okta must refuse after its
    permission check: a profile without the required fields (400), a user that does not exist (404)."""
    return {
        "create account": capability(
            "create account", "POST /api/v1/users?activate=false with an empty profile",
            lambda: client.request("POST", "/api/v1/users", params={"activate": "false"}, json={"profile": {}}),
            (OktaInvalidRequest,)),
        "update user": capability(
            "update user", "POST /api/v1/users/{nonexistent user}",
            lambda: client.request("POST", f"/api/v1/users/{PROBE_USER}", json={"profile": {"title": "probe"}}),
            (OktaNotFound,)),
    }


USER_ID = {"user_id": Arg("str", True)}


# ------------------------------------------------------------------------------------ changes

def _changed_users(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    # A filter includes DEPROVISIONED users, as the full list's search=status pr does.
    query = q(f'lastUpdated gt "{since}"')
    return [StreamSpec(USERS, f"/api/v1/users?filter={query}&limit={USERS_LIMIT}", headers=OMIT_CREDENTIALS)]


# The Everyone (BUILT_IN) group holds every user: a user created or deleted changes its members
# and its user count without Okta moving its timestamps, so it is re-listed then.
EVERYONE = ("groups", 'type eq "BUILT_IN"')


LIFECYCLE_EVENTS = tuple(f"user.lifecycle.{op}" for op in (
    "create", "activate", "deactivate", "suspend", "unsuspend", "reactivate", "delete.completed"))


def _user_dirty(event: Any, options: SyncOptions) -> Dirty:
    kind = event.get("eventType")
    users = event_targets(event, "User")
    if kind == "user.lifecycle.create":
        return Dirty(also=(EVERYONE,))
    if kind == "user.lifecycle.delete.completed":
        # Its groups' member lists (not Everyone's: derived) move too; the groups list would
        # open them once its page is back, opening them now takes that wait off their pages.
        return Dirty(deleted=tuple(key(uid) for uid in users), also=(EVERYONE,),
                     holding=tuple((key(uid), "group-members") for uid in users))
    # An app user's status follows the user's: re-list the apps that list this user.
    return Dirty(holding=tuple((key(uid), "app-users") for uid in users))


def _screen(get_page: Any, since: str, options: SyncOptions, view: View) -> Screened:
    """With an e-mail filter, the changed users whose e-mail left it since the last run are
    removed with all their grants (the partial list only skips them); a user who existed before
    and whose e-mail entered it holds grants no run kept (they were pruned): a full sync then."""
    if not options.filter_email_domains:
        return Screened()
    url: str | None = _changed_users(options, since, ())[0].url
    users: list[Mapping[str, Any]] = []
    waited, pages = [0.0], 0
    try:
        while url:
            page = get_waiting(get_page, url, waited)
            pages += 1
            users += [u for u in records(page.items) if isinstance(u, Mapping) and isinstance(u.get("id"), str)]
            url = page.next_url
    except (OktaError, LogUnavailable) as exc:
        return Screened(full_reason=f"the changed users could not be read for the e-mail filter ({exc})",
                        requests=pages)
    allowed = {key(u["id"]): u for u in users if options.user_allowed(u.get("profile"))}
    excluded = {key(u["id"]) for u in users} - set(allowed)
    present = view.present(set(allowed) | excluded)
    start = parse_time(since)
    entered = sorted(k for k, u in allowed.items()
                     if k not in present and (created := parse_time(u.get("created"))) and start and created < start)
    if entered:
        return Screened(full_reason=f"{len(entered)} user(s) whose e-mail entered filter_email_domains since the "
                                    f"last sync ({', '.join(entered[:3])}): their earlier grants were never kept",
                        requests=pages)
    return Screened(deleted=tuple(sorted(excluded & present)), requests=pages)


TYPE = ResourceType(
    NAME,
    streams=(Stream(USERS, "users", "okta.users.read (an admin role that can view users)", _users),),
    initial_streams=_initial_streams,
    actions=(
        Action("enable_user", USER_ID, enable_user),
        Action("disable_user", USER_ID, disable_user),
        Action("create_account", {
            "email": Arg("str", True), "first_name": Arg("str", True), "last_name": Arg("str", True),
            "login": Arg("str"), "password": Arg("str", choices=PASSWORD_CHOICES), "password_change_on_login_required": Arg("bool"),
            "create_inactive": Arg("bool"), "send_activation_email": Arg("bool"), "provider_type": Arg("str", choices=PROVIDER_TYPES),
            "additionalAttributes": Arg("dict"),
        }, create_account, _check_account,
           note="login defaults to email; password_change_on_login_required needs password=random; "
                "FEDERATION users get no password; create_inactive (STAGED) wins over the rest"),
        Action("update_user", {**USER_ID, **{f: Arg("str") for f in PROFILE_FIELDS},
                               "additionalAttributes": Arg("dict")}, update_user, _check_update,
               note="needs at least one profile field; additionalAttributes sets any other profile attribute"),
        Action("deactivate_user", USER_ID, deactivate_user),
        Action("delete_user", USER_ID, delete_user),
    ),
    delete=_delete,
    changes=ChangeSources(lists=_changed_users, partial=(USERS,), event_types=LIFECYCLE_EVENTS,
                          dirty=_user_dirty, screen=_screen),
    probes=_probes,
    container_of=lambda _user: container_key(USERS, None),
)
