"""Validate and normalize a provisioning request before it is recorded.

A request is `(kind, payload)`:

- `grant`  {"entitlement": ENT_ID, "principal": "TYPE:ID"}  (or principal_type + principal_id);
           a role Okta scopes may add "targets": {"groups": [...]} or {"apps": [...], "app_instances": [...]}
- `revoke` {"grant": GRANT_ID}  or  {"entitlement": ENT_ID, "principal": "TYPE:ID"}
- `action` {"action": NAME, "args": {...}}  (NAME an action of a resource type: worker.connector.types.ACTIONS)
- `delete` {"resource_type": "user" | "group", "resource_id": RAW_OKTA_ID}

normalize() returns the canonical payload (so equivalent spellings hash alike) or raises
InvalidRequest naming what is wrong. Ids are parsed with worker.model, never re-invented.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from worker.connector.types import ACTIONS, DELETABLE, TYPES, role
from worker.connector.types.base import Arg
from worker.model import (
    Grant,
    InvalidId,
    check_grantable,
    parse_entitlement_id,
    parse_grant_id,
    parse_principal,
    resource_key,
)
from worker.provisioning.errors import InvalidRequest

KINDS = ("grant", "revoke", "action", "delete")


def _bad(msg: str) -> InvalidRequest:
    return InvalidRequest(msg)


def _raw_id(what: str, value: Any, prefix: str | None = None) -> str:
    """A raw Okta id; `user:00u1` is accepted for a user id (a baton resource id)."""
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{what} must be a non-empty string, got {value!r}")
    value = value.strip()
    if prefix and value.startswith(prefix + ":"):
        value = value[len(prefix) + 1:]
    if ":" in value or "/" in value or any(c.isspace() for c in value):
        raise _bad(f"{what} {value!r} is not a raw Okta id (e.g. 00u1abc...)")
    return value


def _principal(payload: dict[str, Any]) -> tuple[str, str]:
    if "principal" in payload:
        return parse_principal(payload["principal"])
    if "principal_type" in payload or "principal_id" in payload:
        return parse_principal(resource_key(str(payload.get('principal_type')), str(payload.get('principal_id'))))
    raise _bad("missing 'principal' (TYPE:ID, e.g. user:00u1)")


def _grant_target(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if "targets" in payload:
        if kind != "grant":
            raise _bad("'targets' go with a grant (a revoke removes the whole role assignment)")
        target = _grant_target(kind, {k: v for k, v in payload.items() if k != "targets"})
        try:
            target["targets"] = role.check_targets(parse_entitlement_id(target["entitlement"]), payload["targets"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return target
    if kind == "revoke" and "grant" in payload:
        extra = set(payload) - {"grant"}
        if extra:
            raise _bad(f"revoke takes either 'grant' or 'entitlement'+'principal', not both ({sorted(extra)})")
        g = parse_grant_id(payload["grant"])
        ent, (ptype, pid) = parse_entitlement_id(g.entitlement_id), (g.principal_type, g.principal_id)
    else:
        if "entitlement" not in payload:
            raise _bad(f"{kind} needs 'entitlement' (an entitlement id, e.g. group:00g1:member)")
        ent = parse_entitlement_id(payload["entitlement"])
        ptype, pid = _principal(payload)
        check_grantable(ent, ptype)
    # What we can execute; everything else is refused here, before it is queued.
    rtype = TYPES[ent.resource_type]
    if (rtype.grant if kind == "grant" else rtype.revoke) is None:
        raise _bad(rtype.not_provisionable(kind, ent))
    return {"entitlement": ent.id, "principal": Grant(ent.id, ptype, pid).principal}


def _coerce(action: str, name: str, spec: Arg, value: Any) -> Any:
    where = f"action {action!r} argument {name!r}"
    if spec.type == "str":
        if not isinstance(value, str):
            raise _bad(f"{where} must be a string, got {type(value).__name__}")
        if spec.max_len is not None and not (1 <= len(value) <= spec.max_len):
            raise _bad(f"{where} must be 1-{spec.max_len} characters long")
        if spec.choices is not None:
            # Spelled as the schema does, so equivalent requests hash alike.
            match = next((c for c in spec.choices if c.lower() == value.lower()), None)
            if match is None:
                raise _bad(f"{where} must be one of {', '.join(spec.choices)}, got {value!r}")
            return match
        return value
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad(f"{where} must be true or false, got {value!r}")
    if spec.type == "list":
        if isinstance(value, str):  # CLI: a,b,c
            value = [v for v in (p.strip() for p in value.split(",")) if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(f"{where} must be a list of strings, got {value!r}")
        return value
    if spec.type == "dict":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise _bad(f"{where} must be a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise _bad(f"{where} must be an object, got {type(value).__name__}")
        return value
    raise AssertionError(spec.type)


def _action(payload: dict[str, Any]) -> dict[str, Any]:
    name = payload.get("action")
    if not isinstance(name, str) or name not in ACTIONS:
        raise _bad(f"unknown action {name!r}; actions: {', '.join(ACTIONS)}")
    args = payload.get("args", {})
    if not isinstance(args, dict):
        raise _bad(f"action {name!r}: 'args' must be an object, got {type(args).__name__}")
    spec = ACTIONS[name].args
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise _bad(f"action {name!r}: unknown argument(s) {', '.join(unknown)}; takes {', '.join(spec)}")
    missing = [k for k, a in spec.items() if a.required and args.get(k) in (None, "")]
    if missing:
        raise _bad(f"action {name!r}: missing required argument(s) {', '.join(missing)}")
    out = {k: _coerce(name, k, spec[k], v) for k, v in args.items() if v is not None}
    for key in ("user_id", "group_id"):
        if key in out:
            out[key] = _raw_id(f"action {name!r} argument {key!r}", out[key], key.split("_")[0])
    if "userMembers" in out:
        out["userMembers"] = [_raw_id("userMembers entry", v, "user") for v in out["userMembers"]]
    problem = ACTIONS[name].check(out)
    if problem:
        raise _bad(problem)
    return {"action": name, "args": out}


def _delete(payload: dict[str, Any]) -> dict[str, Any]:
    rtype = payload.get("resource_type")
    if rtype not in DELETABLE:
        raise _bad(f"delete: resource_type must be one of {', '.join(DELETABLE)}, got {rtype!r}")
    return {"resource_type": rtype, "resource_id": _raw_id("delete: resource_id", payload.get("resource_id"), rtype)}


def normalize(kind: Any, payload: Any) -> dict[str, Any]:
    """The canonical payload of a valid request; InvalidRequest naming the problem otherwise."""
    if kind not in KINDS:
        raise _bad(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    if not isinstance(payload, dict):
        raise _bad(f"payload must be a JSON object, got {type(payload).__name__}")
    try:
        if kind in ("grant", "revoke"):
            return _grant_target(kind, payload)
        if kind == "action":
            return _action(payload)
        return _delete(payload)
    except InvalidId as exc:
        raise _bad(str(exc)) from None


def payload_hash(kind: str, payload: Any) -> str:
    """Hash of (kind, payload) in canonical JSON: equal for the same request however spelled."""
    text = json.dumps({"kind": kind, "payload": payload}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
