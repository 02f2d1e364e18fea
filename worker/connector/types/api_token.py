"""API tokens (secrets, read-only): the api-tokens list and the api-token resource, owned by its
user, and the probe that says whether secrets can be synced (baton-okta api_token.go;
reference/baton-okta.md §1.8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec, each, object_id, records, text
from worker.connector.probes import Capability, capability
from worker.connector.types import user
from worker.connector.types.base import ChangeSources, ResourceType, Stream
from worker.model import Resource

NAME = "api-token"
API_TOKENS = "api-tokens"  # stream kind


def resource(token: Mapping[str, Any]) -> Resource:
    """Only the token's metadata fields are copied: anything else Okta might add is not, so a
    value can never slip into the store."""
    tid = object_id(token, "api token")
    user_id = text(token.get("userId"))
    data = {
        "name": token.get("name"),
        "user_id": user_id,
        "client_name": token.get("clientName"),
        "created": token.get("created"),
        "expires_at": token.get("expiresAt"),
        "last_updated": token.get("lastUpdated"),
        "token_window": token.get("tokenWindow"),
    }
    return Resource(NAME, tid, text(token.get("name")) or tid, data,
                    parent=user.key(user_id) if user_id else None)


def _initial_streams(options: SyncOptions) -> list[StreamSpec]:
    return [StreamSpec(API_TOKENS, "/api/v1/api-tokens")] if options.sync_secrets else []


def _api_tokens(spec: StreamSpec, body: Any, options: SyncOptions) -> PageResult:
    out = PageResult()
    each(out, "api tokens", records(body), lambda t: out.resources.append(resource(t)))
    return out


def _probes(client: Any) -> dict[str, Capability]:
    return {"sync secrets": capability("sync secrets", "GET /api/v1/api-tokens",
                                       lambda: client.get("/api/v1/api-tokens"))}



def _whole_lists(options: SyncOptions, since: str, also: tuple[str, ...]) -> list[StreamSpec]:
    return _initial_streams(options)  # one small list: re-listed whole every incremental run


TYPE = ResourceType(
    NAME,
    streams=(Stream(API_TOKENS, "API tokens",
                    "okta.apiTokens.read (a super admin, or an admin role that can view API tokens)", _api_tokens),),
    initial_streams=_initial_streams,
    probes=_probes,
    changes=ChangeSources(lists=_whole_lists),
)
