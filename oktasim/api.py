"""The management API: one table of routes (method, path, OAuth scope, operation, handler) and the
handlers. Handlers are synchronous and pure over the Org; the server does HTTP, auth, rate
limits, latency and faults around them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import orjson

from oktasim import errors, render
from oktasim.errors import OktaError
from oktasim.orderedset import OrderedIds
from oktasim.org import Org
from oktasim.query import (
    APP_FILTER,
    GROUP_FILTER,
    GROUP_SEARCH,
    USER_FILTER,
    USER_SEARCH,
    Dialect,
    QueryError,
    compile_query,
)


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, list[str]]      # decoded query parameters, in order
    base: str                       # scheme://host:port as the client addressed us
    headers: Any
    body: bytes
    org: Org

    def arg(self, name: str) -> str | None:
        v = self.args.get(name)
        return v[-1] if v else None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean query parameter; anything but true/false is Okta's validation error."""
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        if raw.lower() not in ("true", "false"):
            raise errors.invalid(f"Api validation failed: {name}",
                                 [f"{name}: '{raw}' is not a valid boolean (true or false)"])
        return raw.lower() == "true"

    def json(self) -> dict:
        if not self.body.strip():
            return {}
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise errors.malformed_body() from None
        if not isinstance(data, dict):
            raise errors.malformed_body()
        return data


@dataclass
class Response:
    status: int = 200
    body: bytes | None = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    items: int = 0                  # objects returned (the per-item latency cost)


def json_response(obj: Any, status: int = 200, items: int = 1) -> Response:
    return Response(status, orjson.dumps(obj), items=items)


NO_CONTENT = Response(204, None)


# ---------------------------------------------------------------- pagination

def _limit(req: Request, default: int, maximum: int) -> int:
    raw = req.arg("limit")
    if raw is None or raw == "":
        return default
    try:
        n = int(raw)
    except ValueError:
        raise errors.invalid("Api validation failed: limit",
                             [f"limit: '{raw}' is not a valid integer"]) from None
    if n < 1:
        return default
    return min(n, maximum)


def _page(req: Request, ordered: OrderedIds, default: int, maximum: int,
          keep: Callable[[str], bool] | None = None) -> tuple[list[str], int, str | None]:
    limit = _limit(req, default, maximum)
    start = ordered.start_after(req.arg("after") or None)
    if start is None:
        raise errors.bad_cursor()
    ids, more = ordered.page(start, limit, keep)
    return ids, limit, (ids[-1] if more and ids else None)


def _link_url(req: Request, limit: int | None, after: str | None, keep_after: bool) -> str:
    params = [(k, v) for k, vs in req.args.items() if k not in ("after", "limit") for v in vs]
    if keep_after and req.arg("after"):
        params.append(("after", req.arg("after")))
    if after is not None:
        params.append(("after", after))
    if limit is not None:
        params.append(("limit", str(limit)))
    q = urlencode(params)
    return f"{req.base}{req.path}" + (f"?{q}" if q else "")


def _links(req: Request, limit: int | None, next_cursor: str | None) -> list[tuple[str, str]]:
    """Okta's two Link header lines: self (query repeated, limit echoed) and next when more follow."""
    out = [("Link", f'<{_link_url(req, limit, None, True)}>; rel="self"')]
    if next_cursor is not None:
        out.append(("Link", f'<{_link_url(req, limit, next_cursor, False)}>; rel="next"'))
    return out


def _list(req: Request, chunks: list[bytes], limit: int | None, next_cursor: str | None,
          links: bool = True) -> Response:
    return Response(200, b"[" + b",".join(chunks) + b"]",
                    _links(req, limit, next_cursor) if links else [], items=len(chunks))


def _iam_list(req: Request, key: str, items: list[dict], limit: int, next_cursor: str | None,
              extra_links: dict | None = None) -> Response:
    """IAM collections: an object with the items under `key` and `_links.next.href` in the body."""
    # self echoes a limit only when the caller gave one (as recorded: `<…/iam/roles>; rel="self"`)
    links: dict = {"self": {"href": _link_url(req, limit if req.arg("limit") else None, None, True)}}
    if next_cursor is not None:
        links["next"] = {"href": _link_url(req, limit, next_cursor, False)}
    links.update(extra_links or {})
    body = {key: items, "_links": links}
    headers = [("Link", f'<{links["self"]["href"]}>; rel="self"')]
    if next_cursor is not None:
        headers.append(("Link", f'<{links["next"]["href"]}>; rel="next"'))
    return Response(200, orjson.dumps(body), headers, items=len(items))


MAX_QUERY = 2000   # Okta refuses overly long or complex expressions


def _compile(text: str, dialect: Dialect, err: Callable[[], OktaError]) -> Callable[[Any], bool]:
    if len(text) > MAX_QUERY:
        raise err()
    try:
        return compile_query(text, dialect)
    except (QueryError, RecursionError):
        raise err() from None


def _omit_credentials(req: Request) -> tuple[bool, bool]:
    """(credentials, credential links) honouring `okta-response=omitCredentials,omitCredentialsLinks`,
    sent as a Content-Type parameter (Okta's way) or as its own header."""
    raw = (req.headers.get("okta-response") or "") + ";" + (req.headers.get("Content-Type") or "")
    return "omitCredentials" not in raw.replace("omitCredentialsLinks", ""), "omitCredentialsLinks" not in raw


# ---------------------------------------------------------------- users

def list_users(req: Request) -> Response:
    org = req.org
    search, flt, q = req.arg("search"), req.arg("filter"), req.arg("q")
    creds, _ = _omit_credentials(req)
    if search and flt:
        raise errors.search_and_filter()
    if q is not None and not search and not flt:
        limit = _limit(req, 10, 200)
        ql = q.lower()
        out: list[bytes] = []
        for uid in org.user_order:
            u = org.users[uid]
            if u.status == "DEPROVISIONED":
                continue
            p = u.profile
            if any(isinstance(p.get(k), str) and p[k].lower().startswith(ql)
                   for k in ("firstName", "lastName", "email")):
                out.append(render.user_list_bytes(org, u, req.base, creds))
                if len(out) >= limit:
                    break
        return _list(req, out, limit, None, links=False)
    if search:
        pred = _compile(search, USER_SEARCH, errors.bad_search)
        keep = lambda uid: pred(org.users[uid])  # noqa: E731
    elif flt:
        pred = _compile(flt, USER_FILTER, errors.bad_filter)
        keep = lambda uid: pred(org.users[uid])  # noqa: E731
    else:
        keep = lambda uid: org.users[uid].status != "DEPROVISIONED"  # noqa: E731
    ids, limit, nxt = _page(req, org.user_order, 200, 200, keep)
    users = org.users
    return _list(req, [render.user_list_bytes(org, users[i], req.base, creds) for i in ids], limit, nxt)


def get_user(req: Request, uid: str) -> Response:
    u = req.org.user(uid)
    creds, cred_links = _omit_credentials(req)
    return json_response(render.user_dict(req.org, u, req.base, full=True, credentials=creds,
                                          credential_links=cred_links))


def create_user(req: Request) -> Response:
    body = req.json()
    activate = req.flag("activate", True)
    u = req.org.create_user(body, activate)
    return json_response(render.user_dict(req.org, u, req.base, full=True))


def update_user(req: Request, uid: str) -> Response:
    u = req.org.update_user(uid, req.json(), replace=req.method == "PUT")
    return json_response(render.user_dict(req.org, u, req.base, full=True))


def lifecycle(req: Request, uid: str, op: str) -> Response:
    send_email = req.flag("sendEmail", True)
    result = req.org.lifecycle(uid, op)
    if op in ("activate", "reactivate") and send_email:
        result = {}
    if result:
        result = {k: (req.base + v if k == "activationUrl" else v) for k, v in result.items()}
    return json_response(result, items=0)


def delete_user(req: Request, uid: str) -> Response:
    req.org.delete_user(uid)
    return NO_CONTENT


def user_groups(req: Request, uid: str) -> Response:
    org = req.org
    u = org.user(uid)
    ids, limit, nxt = _page(req, OrderedIds([g.id for g in org.user_groups(u.id)]), 200, 200)
    return _list(req, [render.group_bytes(org, org.groups[g], req.base) for g in ids], limit, nxt)


def user_roles(req: Request, uid: str) -> Response:
    org = req.org
    u = org.user(uid)
    entries = org.user_role_entries(u.id)
    return json_response([render.role_entry_dict(org, e, req.base) for e in entries], items=len(entries))


def assign_user_role(req: Request, uid: str) -> Response:
    return _role_created(req, req.org.assign_role("user", uid, req.json()), "USER")


def _role_created(req: Request, obj: Any, assignment_type: str) -> Response:
    """201 with the new assignment: a standard role, or the binding member of a custom role."""
    org = req.org
    if hasattr(obj, "type"):
        return json_response(render.standard_role_dict(obj, assignment_type, req.base), 201)
    for rs in org.resource_sets.values():
        for b in rs.bindings.values():
            if obj.id in b.members:
                return json_response(render.custom_role_assignment_dict(org, rs, b, obj, assignment_type,
                                                                        req.base), 201)
    raise errors.internal_error()


def unassign_user_role(req: Request, uid: str, rid: str) -> Response:
    req.org.unassign_role("user", uid, rid)
    return NO_CONTENT


# ---------------------------------------------------------------- groups

def list_groups(req: Request) -> Response:
    org = req.org
    search, flt, q = req.arg("search"), req.arg("filter"), req.arg("q")
    expand = req.arg("expand")
    if expand not in (None, "", "stats", "app", "stats,app", "app,stats"):
        raise errors.invalid("Api validation failed: RequestParams", [f"expand: '{expand}' is not supported"])
    stats = bool(expand) and "stats" in expand
    if search and flt:
        raise errors.search_and_filter()

    with_app = bool(expand) and "app" in expand.split(",")

    def chunk(gid: str) -> bytes:
        g = org.groups[gid]
        if stats or (with_app and g.source):
            d = render.group_dict(org, g, req.base, stats=stats)
            if with_app and g.source in org.apps:
                d.setdefault("_embedded", {})["app"] = render.app_dict(org, org.apps[g.source], req.base)
            return orjson.dumps(d)
        return render.group_bytes(org, g, req.base)

    if q is not None and not search and not flt:
        limit = _limit(req, 300, 10000)
        ql = q.lower()
        out = [gid for gid in org.group_order if org.groups[gid].profile.get("name", "").lower().startswith(ql)]
        return _list(req, [chunk(g) for g in out[:limit]], limit, None, links=False)
    keep = None
    if search:
        pred = _compile(search, GROUP_SEARCH, errors.bad_search)
        keep = lambda gid: pred(org.groups[gid])  # noqa: E731
    elif flt:
        pred = _compile(flt, GROUP_FILTER, errors.bad_filter)
        keep = lambda gid: pred(org.groups[gid])  # noqa: E731
    ids, limit, nxt = _page(req, org.group_order, 10000, 10000, keep)
    return _list(req, [chunk(g) for g in ids], limit, nxt)


def get_group(req: Request, gid: str) -> Response:
    g = req.org.group(gid)
    stats = "stats" in (req.arg("expand") or "")
    return json_response(render.group_dict(req.org, g, req.base, stats=stats))


def create_group(req: Request) -> Response:
    g = req.org.create_group(req.json())
    return json_response(render.group_dict(req.org, g, req.base))


def update_group(req: Request, gid: str) -> Response:
    g = req.org.update_group(gid, req.json())
    return json_response(render.group_dict(req.org, g, req.base))


def delete_group(req: Request, gid: str) -> Response:
    req.org.delete_group(gid)
    return NO_CONTENT


def group_members(req: Request, gid: str) -> Response:
    org = req.org
    g = org.group(gid)
    creds, _ = _omit_credentials(req)
    ids, limit, nxt = _page(req, org.group_members(g), 1000, 10000)
    users = org.users
    return _list(req, [render.user_list_bytes(org, users[i], req.base, creds) for i in ids], limit, nxt)


def add_member(req: Request, gid: str, uid: str) -> Response:
    req.org.add_member(gid, uid)
    return NO_CONTENT


def remove_member(req: Request, gid: str, uid: str) -> Response:
    req.org.remove_member(gid, uid)
    return NO_CONTENT


def group_apps(req: Request, gid: str) -> Response:
    org = req.org
    g = org.group(gid)
    ids, limit, nxt = _page(req, g.apps, 20, 200)
    return _list(req, [render.app_bytes(org, org.apps[a], req.base) for a in ids], limit, nxt)


def group_roles(req: Request, gid: str) -> Response:
    org = req.org
    g = org.group(gid)
    entries = org.group_role_entries(g.id)
    return json_response([render.role_entry_dict(org, e, req.base) for e in entries], items=len(entries))


def assign_group_role(req: Request, gid: str) -> Response:
    return _role_created(req, req.org.assign_role("group", gid, req.json()), "GROUP")


def unassign_group_role(req: Request, gid: str, rid: str) -> Response:
    req.org.unassign_role("group", gid, rid)
    return NO_CONTENT


# ---------------------------------------------------------------- apps

_APP_EXPANDS = re.compile(r"^user/[^/]+$")


def list_apps(req: Request) -> Response:
    org = req.org
    flt, q, expand = req.arg("filter"), req.arg("q"), req.arg("expand")
    if expand and not (_APP_EXPANDS.match(expand) and flt and "user.id" in flt):
        raise errors.invalid("Api validation failed: RequestParams")
    preds: list[Callable[[Any], bool]] = []
    if flt:
        preds.append(_compile(flt, APP_FILTER, errors.bad_filter))
    if q:
        ql = q.lower()
        preds.append(lambda a: a.name.lower().startswith(ql) or a.label.lower().startswith(ql))
    keep = (lambda aid: all(p(org.apps[aid]) for p in preds)) if preds else None
    ids, limit, nxt = _page(req, org.app_order, 20, 200, keep)
    return _list(req, [render.app_bytes(org, org.apps[a], req.base) for a in ids], limit, nxt)


def get_app(req: Request, aid: str) -> Response:
    return json_response(render.app_dict(req.org, req.org.app(aid), req.base))


def app_users(req: Request, aid: str) -> Response:
    org = req.org
    a = org.app(aid)
    q = req.arg("q")
    keep = None
    if q:
        ql = q.lower()

        def keep(uid: str) -> bool:
            p = org.users[uid].profile
            d = a.direct.get(uid)
            names = [p.get("firstName"), p.get("lastName"), p.get("email"),
                     d.user_name if d else p.get("login")]
            return any(isinstance(n, str) and n.lower().startswith(ql) for n in names)
    expand = req.arg("expand")
    if expand not in (None, "", "user"):
        raise errors.invalid("Api validation failed: RequestParams", [f"expand: '{expand}' is not supported"])
    ids, limit, nxt = _page(req, a.users, 50, 500, keep)
    expand_user = expand == "user"
    items = []
    for uid in ids:
        d = render.app_user_dict(org, a, uid, req.base)
        if expand_user:
            d["_embedded"] = {"user": render.user_dict(org, org.users[uid], req.base, full=False)}
        items.append(orjson.dumps(d))
    return _list(req, items, limit, nxt)


def get_app_user(req: Request, aid: str, uid: str) -> Response:
    org = req.org
    a = org.app(aid)
    u = org.user(uid)
    if u.id not in a.users:
        raise errors.not_found_typed(uid, "AppUser")
    return json_response(render.app_user_dict(org, a, u.id, req.base))


def assign_app_user(req: Request, aid: str) -> Response:
    org = req.org
    uid = org.assign_app_user(aid, req.json())
    return json_response(render.app_user_dict(org, org.apps[aid], uid, req.base))


def unassign_app_user(req: Request, aid: str, uid: str) -> Response:
    req.org.unassign_app_user(aid, uid)
    return NO_CONTENT


def app_groups(req: Request, aid: str) -> Response:
    org = req.org
    a = org.app(aid)
    q = req.arg("q")
    keep = None
    if q:
        ql = q.lower()
        keep = lambda gid: org.groups[gid].profile.get("name", "").lower().startswith(ql)  # noqa: E731
    ids, limit, nxt = _page(req, a.groups, 20, 200, keep)
    return _list(req, [orjson.dumps(render.app_group_dict(a, g, a.group_assign[g], req.base)) for g in ids],
                 limit, nxt)


def get_app_group(req: Request, aid: str, gid: str) -> Response:
    a = req.org.app(aid)
    ag = a.group_assign.get(gid)
    if ag is None:
        raise errors.not_found_typed(gid, "ApplicationGroupAssignment")
    return json_response(render.app_group_dict(a, gid, ag, req.base))


def assign_app_group(req: Request, aid: str, gid: str) -> Response:
    org = req.org
    ag = org.assign_app_group(aid, gid, req.json())
    return json_response(render.app_group_dict(org.apps[aid], gid, ag, req.base))


def unassign_app_group(req: Request, aid: str, gid: str) -> Response:
    req.org.unassign_app_group(aid, gid)
    return NO_CONTENT


# ---------------------------------------------------------------- IAM

def assignees_users(req: Request) -> Response:
    org = req.org
    ids, limit, nxt = _page(req, org.admins, 100, 100)
    items = [{"id": uid, "orn": f"orn:okta:directory:{org.id}:users:{uid}",
              "_links": {"self": {"href": f"{req.base}/api/v1/users/{uid}"},
                         "roles": {"href": f"{req.base}/api/v1/users/{uid}/roles"}}} for uid in ids]
    return _iam_list(req, "value", items, limit, nxt)


def list_custom_roles(req: Request) -> Response:
    org = req.org
    ids, limit, nxt = _page(req, org.custom_role_order, 100, 100)
    return _iam_list(req, "roles", [render.custom_role_dict(org.custom_roles[i], req.base) for i in ids],
                     limit, nxt)


def _iam_object(req: Request, obj: dict) -> Response:
    """IAM objects come with a self Link header too (recorded)."""
    resp = json_response(obj)
    resp.headers.append(("Link", f'<{req.base}{req.path}>; rel="self"'))
    return resp


def get_custom_role(req: Request, rid: str) -> Response:
    return _iam_object(req, render.custom_role_dict(req.org.custom_role(rid), req.base, single=True))


def role_permissions(req: Request, rid: str) -> Response:
    cr = req.org.custom_role(rid)
    href = f"{req.base}/api/v1/iam/roles/{cr.id}/permissions"
    return json_response({"permissions": [
        {"label": p, "created": cr.created, "lastUpdated": cr.last_updated, "conditions": None,
         "_links": {"role": {"href": f"{req.base}/api/v1/iam/roles/{cr.id}"},
                    "self": {"href": f"{href}/{p}"}}} for p in cr.permissions]},
        items=len(cr.permissions))


def list_resource_sets(req: Request) -> Response:
    org = req.org
    ids, limit, nxt = _page(req, org.resource_set_order, 100, 100)
    return _iam_list(req, "resource-sets",
                     [render.resource_set_dict(org.resource_sets[i], req.base) for i in ids], limit, nxt)


def get_resource_set(req: Request, rsid: str) -> Response:
    return _iam_object(req, render.resource_set_dict(req.org.resource_set(rsid), req.base))


def list_bindings(req: Request, rsid: str) -> Response:
    rs = req.org.resource_set(rsid)
    ids, limit, nxt = _page(req, rs.binding_ids, 100, 100)
    return _iam_list(req, "roles", [render.binding_dict(rs, r, req.base) for r in ids], limit, nxt,
                     {"resource-set": {"href": f"{req.base}/api/v1/iam/resource-sets/{rs.id}"}})


def _binding(req: Request, rsid: str, role: str):
    org = req.org
    rs = org.resource_set(rsid)
    cr = org.custom_role(role)
    b = rs.bindings.get(cr.id)
    if b is None:
        raise errors.not_found_typed(role, "ResourceSetBinding")
    return rs, cr, b


def get_binding(req: Request, rsid: str, role: str) -> Response:
    rs, cr, _ = _binding(req, rsid, role)
    d = render.binding_dict(rs, cr.id, req.base)
    d["_links"]["resource-set"] = {"href": f"{req.base}/api/v1/iam/resource-sets/{rs.id}"}
    d["_links"]["role"] = {"href": f"{req.base}/api/v1/iam/roles/{cr.id}"}
    return _iam_object(req, d)


def list_binding_members(req: Request, rsid: str, role: str) -> Response:
    rs, cr, b = _binding(req, rsid, role)
    ids, limit, nxt = _page(req, b.member_ids, 100, 100)
    href = f"{req.base}/api/v1/iam/resource-sets/{rs.id}/bindings/{cr.id}"
    return _iam_list(req, "members", [render.binding_member_dict(rs, b, b.members[m], req.base) for m in ids],
                     limit, nxt, {"binding": {"href": href}})


def get_binding_member(req: Request, rsid: str, role: str, mid: str) -> Response:
    rs, _, b = _binding(req, rsid, role)
    m = b.members.get(mid)
    if m is None:
        raise errors.not_found_typed(mid, "ResourceSetBindingMember")
    return _iam_object(req, render.binding_member_dict(rs, b, m, req.base))


_MEMBER_HREF = re.compile(r"/api/v1/(users|groups)/([^/?#]+)/?$")


def add_binding_members(req: Request, rsid: str, role: str) -> Response:
    org = req.org
    rs, cr, _ = _binding(req, rsid, role)
    additions = req.json().get("additions")
    if not isinstance(additions, list) or not additions:
        raise errors.invalid("Api validation failed: additions", ["additions: The field cannot be left blank"])
    targets = []
    for href in additions:
        m = _MEMBER_HREF.search(href) if isinstance(href, str) else None
        if m is None:
            raise errors.invalid("Api validation failed: additions",
                                 [f"additions: '{href}' is not a user or group URL"])
        if m.group(1) == "users":
            targets.append(("user", org.user(m.group(2)).id))
        else:
            targets.append(("group", org.group(m.group(2)).id))
    for ptype, pid in targets:
        org.add_binding_member(rs, cr, ptype, pid)
    href = f"{req.base}/api/v1/iam/resource-sets/{rs.id}/bindings/{cr.id}"
    return json_response({"id": cr.id, "_links": {"self": {"href": href},
                                                   "bindings": {"href": href.rsplit("/", 1)[0]}}})


def _member_targets(req: Request, hrefs: object) -> list[tuple[str, str]]:
    if not isinstance(hrefs, list) or not hrefs:
        raise errors.invalid("Api validation failed: members", ["members: The field cannot be left blank"])
    targets = []
    for href in hrefs:
        m = _MEMBER_HREF.search(href) if isinstance(href, str) else None
        if m is None:
            raise errors.invalid("Api validation failed: members", [f"members: '{href}' is not a user or group URL"])
        kind = "user" if m.group(1) == "users" else "group"
        targets.append((kind, req.org.user(m.group(2)).id if kind == "user" else req.org.group(m.group(2)).id))
    return targets


def create_binding(req: Request, rsid: str) -> Response:
    """POST /iam/resource-sets/{id}/bindings {"role": id, "members": [user or group URLs]}."""
    org = req.org
    rs = org.resource_set(rsid)
    body = req.json()
    cr = org.custom_role(str(body.get("role") or ""))
    targets = _member_targets(req, body.get("members"))
    for ptype, pid in targets:
        org.add_binding_member(rs, cr, ptype, pid)
    href = f"{req.base}/api/v1/iam/resource-sets/{rs.id}/bindings/{cr.id}"
    return json_response({"id": cr.id, "_links": {"self": {"href": href},
                                                   "bindings": {"href": href.rsplit("/", 1)[0]}}})


def delete_binding(req: Request, rsid: str, role: str) -> Response:
    req.org.delete_binding(rsid, role)
    return NO_CONTENT


def remove_binding_member(req: Request, rsid: str, role: str, mid: str) -> Response:
    req.org.remove_binding_member(rsid, role, mid)
    return NO_CONTENT


# ---------------------------------------------------------------- API tokens, org

def list_api_tokens(req: Request) -> Response:
    org = req.org
    items = [orjson.dumps(render.api_token_dict(org.api_tokens[t], req.base)) for t in org.api_token_order]
    return _list(req, items, None, None, links=False)


def get_api_token(req: Request, tid: str) -> Response:
    return json_response(render.api_token_dict(req.org.api_token(tid), req.base))


def get_org(req: Request) -> Response:
    return json_response(render.org_dict(req.org, req.base))


# ---------------------------------------------------------------- the route table

@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable[..., Response]
    scope: str
    operation: str
    body: bool = False       # a POST/PUT whose framing (Content-Length) is checked


_ID = r"(?P<{}>[^/]+)"


def _r(method: str, path: str, handler: Callable[..., Response], scope: str, operation: str = "read") -> Route:
    regex = re.sub(r"\{(\w+)\}", lambda m: _ID.format(m.group(1)), path)
    return Route(method, re.compile(f"^{regex}/?$"), handler, scope, operation, method in ("POST", "PUT"))


UR, UM = "okta.users.read", "okta.users.manage"
GR, GM = "okta.groups.read", "okta.groups.manage"
AR, AM = "okta.apps.read", "okta.apps.manage"
RR, RM = "okta.roles.read", "okta.roles.manage"

ROUTES: list[Route] = [
    _r("GET", "/api/v1/org", get_org, "okta.orgs.read"),
    _r("GET", "/api/v1/users", list_users, UR),
    _r("POST", "/api/v1/users", create_user, UM, "user.create"),
    _r("GET", "/api/v1/users/{uid}", get_user, UR),
    _r("POST", "/api/v1/users/{uid}", update_user, UM, "user.lifecycle"),
    _r("PUT", "/api/v1/users/{uid}", update_user, UM, "user.lifecycle"),
    _r("DELETE", "/api/v1/users/{uid}", delete_user, UM, "user.delete"),
    _r("POST", "/api/v1/users/{uid}/lifecycle/{op}", lifecycle, UM, "user.lifecycle"),
    _r("GET", "/api/v1/users/{uid}/groups", user_groups, UR),
    _r("GET", "/api/v1/users/{uid}/roles", user_roles, RR),
    _r("POST", "/api/v1/users/{uid}/roles", assign_user_role, RM, "role.assignment"),
    _r("DELETE", "/api/v1/users/{uid}/roles/{rid}", unassign_user_role, RM, "role.assignment"),
    _r("GET", "/api/v1/groups", list_groups, GR),
    _r("POST", "/api/v1/groups", create_group, GM, "group.create"),
    _r("GET", "/api/v1/groups/{gid}", get_group, GR),
    _r("PUT", "/api/v1/groups/{gid}", update_group, GM, "group.update"),
    _r("DELETE", "/api/v1/groups/{gid}", delete_group, GM, "group.delete"),
    _r("GET", "/api/v1/groups/{gid}/users", group_members, GR),
    _r("PUT", "/api/v1/groups/{gid}/users/{uid}", add_member, GM, "group.membership"),
    _r("DELETE", "/api/v1/groups/{gid}/users/{uid}", remove_member, GM, "group.membership"),
    _r("GET", "/api/v1/groups/{gid}/apps", group_apps, GR),
    _r("GET", "/api/v1/groups/{gid}/roles", group_roles, RR),
    _r("POST", "/api/v1/groups/{gid}/roles", assign_group_role, RM, "role.assignment"),
    _r("DELETE", "/api/v1/groups/{gid}/roles/{rid}", unassign_group_role, RM, "role.assignment"),
    _r("GET", "/api/v1/apps", list_apps, AR),
    _r("GET", "/api/v1/apps/{aid}", get_app, AR),
    _r("GET", "/api/v1/apps/{aid}/users", app_users, AR),
    _r("POST", "/api/v1/apps/{aid}/users", assign_app_user, AM, "app.assignment"),
    _r("GET", "/api/v1/apps/{aid}/users/{uid}", get_app_user, AR),
    _r("DELETE", "/api/v1/apps/{aid}/users/{uid}", unassign_app_user, AM, "app.assignment"),
    _r("GET", "/api/v1/apps/{aid}/groups", app_groups, AR),
    _r("GET", "/api/v1/apps/{aid}/groups/{gid}", get_app_group, AR),
    _r("PUT", "/api/v1/apps/{aid}/groups/{gid}", assign_app_group, AM, "app.assignment"),
    _r("DELETE", "/api/v1/apps/{aid}/groups/{gid}", unassign_app_group, AM, "app.assignment"),
    _r("GET", "/api/v1/iam/assignees/users", assignees_users, RR),
    _r("GET", "/api/v1/iam/roles", list_custom_roles, RR),
    _r("GET", "/api/v1/iam/roles/{rid}", get_custom_role, RR),
    _r("GET", "/api/v1/iam/roles/{rid}/permissions", role_permissions, RR),
    _r("GET", "/api/v1/iam/resource-sets", list_resource_sets, RR),
    _r("GET", "/api/v1/iam/resource-sets/{rsid}", get_resource_set, RR),
    _r("GET", "/api/v1/iam/resource-sets/{rsid}/bindings", list_bindings, RR),
    _r("POST", "/api/v1/iam/resource-sets/{rsid}/bindings", create_binding, RM, "resourceset.membership"),
    _r("GET", "/api/v1/iam/resource-sets/{rsid}/bindings/{role}", get_binding, RR),
    _r("DELETE", "/api/v1/iam/resource-sets/{rsid}/bindings/{role}", delete_binding, RM, "resourceset.membership"),
    _r("GET", "/api/v1/iam/resource-sets/{rsid}/bindings/{role}/members", list_binding_members, RR),
    _r("PATCH", "/api/v1/iam/resource-sets/{rsid}/bindings/{role}/members", add_binding_members, RM,
       "resourceset.membership"),
    _r("GET", "/api/v1/iam/resource-sets/{rsid}/bindings/{role}/members/{mid}", get_binding_member, RR),
    _r("DELETE", "/api/v1/iam/resource-sets/{rsid}/bindings/{role}/members/{mid}", remove_binding_member, RM,
       "resourceset.membership"),
    _r("GET", "/api/v1/api-tokens", list_api_tokens, "okta.apiTokens.read"),
    _r("GET", "/api/v1/api-tokens/{tid}", get_api_token, "okta.apiTokens.read"),
]

_LIFECYCLE_OPS = {"activate", "deactivate", "suspend", "unsuspend", "unlock", "reactivate"}


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for `method path`, or 404 E0000008 (no such path) / 405 E0000022 (wrong method)."""
    path_matched = False
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        params = {k: unquote(v) for k, v in m.groupdict().items()}
        if route.handler is lifecycle and params.get("op") not in _LIFECYCLE_OPS:
            continue
        if route.method != method:
            path_matched = True
            continue
        return route, params
    if path_matched:
        raise errors.method_not_allowed()
    raise errors.path_not_found()
