"""The management API's route table: every resource area's routes, and matching a request to one."""

from __future__ import annotations

from urllib.parse import unquote

from oktasim import errors
from oktasim.areas import api_tokens, apps, groups, logs, org_profile, roles, users
from oktasim.routing import Route

ROUTES: list[Route] = [*org_profile.ROUTES, *users.ROUTES, *groups.ROUTES, *apps.ROUTES, *roles.ROUTES,
                       *api_tokens.ROUTES, *logs.ROUTES]


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for `method path`, or 404 E0000008 (no such path) / 405 E0000022 (wrong method)."""
    path_matched = False
    for route in ROUTES:
        m = route.pattern.match(path)
        if m is None:
            continue
        params = {k: unquote(v) for k, v in m.groupdict().items()}
        if not route.accepts(params):
            continue
        if route.method != method:
            path_matched = True
            continue
        return route, params
    if path_matched:
        raise errors.method_not_allowed()
    raise errors.path_not_found()

