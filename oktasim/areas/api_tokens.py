"""API tokens: the ApiToken object (metadata only; the simulator holds no token secrets), the org's
tokens, creating (no Okta API: an admin does it in the console, so only churn does) and revoking
them, their JSON shape and routes."""

from __future__ import annotations

import orjson

from oktasim import errors
from oktasim.areas.logs import target
from oktasim.orderedset import OrderedIds
from oktasim.routing import NO_CONTENT, Request, Response, json_list, json_response, route
from oktasim.scopes import API_TOKENS_MANAGE, API_TOKENS_READ
from oktasim.timestamps import iso, now


class ApiToken:
    __slots__ = ("id", "name", "user_id", "created", "last_updated", "expires_at", "token_window")

    def __init__(self, id: str, name: str, user_id: str, created: str, last_updated: str,
                 expires_at: str, token_window: str = "P30D"):
        self.id = id
        self.name = name
        self.user_id = user_id
        self.created = created
        self.last_updated = last_updated
        self.expires_at = expires_at
        self.token_window = token_window


class ApiTokenState:
    """The org's API tokens (a mixin of Org; deleting their owner removes them)."""

    def _init_api_tokens(self) -> None:
        self.api_tokens: dict[str, ApiToken] = {}
        self.api_token_order = OrderedIds()

    def api_token(self, tid: str) -> ApiToken:
        t = self.api_tokens.get(tid)
        if t is None:
            raise errors.not_found_typed(tid, "Token")
        return t

    def add_api_token(self, t: ApiToken) -> None:
        self.api_tokens[t.id] = t
        self.api_token_order.add(t.id)

    def create_api_token(self, name: str, user_id: str) -> ApiToken:
        t0 = now()
        t = ApiToken(self.ids.new("00T"), name, self.user(user_id).id, iso(t0), iso(t0), iso(t0 + 30 * 86400))
        self.add_api_token(t)
        self.emit("system.api_token.create", "Create API token", [_token_target(t)])
        return t

    def revoke_api_token(self, tid: str) -> None:
        t = self.api_token(tid)
        del self.api_tokens[t.id]
        self.api_token_order.remove(t.id)
        self.emit("system.api_token.revoke", "Revoke API token", [_token_target(t)])


def _token_target(t: ApiToken) -> dict:
    return target(t.id, "Token", t.name, t.name)


def api_token_dict(t: ApiToken, base: str) -> dict:
    return {
        "id": t.id, "name": t.name, "userId": t.user_id, "clientName": "Okta API",
        "tokenWindow": t.token_window, "network": {"connection": "ANYWHERE"}, "expiresAt": t.expires_at,
        "created": t.created, "lastUpdated": t.last_updated,
        "_links": {"self": {"href": f"{base}/api/v1/api-tokens/{t.id}", "hints": {"allow": ["GET", "DELETE"]}},
                   "user": {"href": f"{base}/api/v1/users/{t.user_id}", "hints": {"allow": ["GET"]}}},
    }


def list_api_tokens(req: Request) -> Response:
    """One unpaged list, as recorded."""
    org = req.org
    items = [orjson.dumps(api_token_dict(org.api_tokens[t], req.base)) for t in org.api_token_order]
    return json_list(req, items, None, None, links=False)


def get_api_token(req: Request, tid: str) -> Response:
    return json_response(api_token_dict(req.org.api_token(tid), req.base))


def revoke_api_token(req: Request, tid: str) -> Response:
    req.org.revoke_api_token(tid)
    return NO_CONTENT


ROUTES = [
    route("GET", "/api/v1/api-tokens", list_api_tokens, API_TOKENS_READ),
    route("GET", "/api/v1/api-tokens/{tid}", get_api_token, API_TOKENS_READ),
    route("DELETE", "/api/v1/api-tokens/{tid}", revoke_api_token, API_TOKENS_MANAGE, "api_token.revoke"),
]


def snapshot(org) -> list[dict]:
    """`api_tokens` of /__sim/state."""
    return [{"id": t.id, "name": t.name, "userId": t.user_id}
            for t in (org.api_tokens[i] for i in org.api_token_order)]
