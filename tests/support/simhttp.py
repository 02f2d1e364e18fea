"""Helpers for the simulator's HTTP tests: an authenticated client and a Link-header walker."""

from __future__ import annotations

import re

import httpx

from tests.support.sim import SIM_TOKEN

NEXT = re.compile(r'^<([^>]+)>; rel="next"$')
SELF = re.compile(r'^<([^>]+)>; rel="self"$')


def client(sim, token: str = SIM_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=sim.url, timeout=30,
                        headers={"Authorization": f"SSWS {token}", "Accept": "application/json"})


def links(resp: httpx.Response) -> tuple[str | None, str | None]:
    """(self, next) from the separate Link header lines."""
    self_url = next_url = None
    for value in resp.headers.get_list("link"):
        if m := SELF.match(value):
            self_url = m.group(1)
        elif m := NEXT.match(value):
            next_url = m.group(1)
        else:
            raise AssertionError(f"unexpected Link value {value!r}")
    return self_url, next_url


def walk(c: httpx.Client, path: str, params: dict | None = None, key: str | None = None
         ) -> tuple[list[dict], list[httpx.Response]]:
    """Follow `next` links to the end; items come from the array body or body[key] (IAM lists)."""
    items: list[dict] = []
    pages: list[httpx.Response] = []
    r = c.get(path, params=params)
    while True:
        assert r.status_code == 200, r.text
        pages.append(r)
        body = r.json()
        items.extend(body if key is None else body[key])
        _, nxt = links(r)
        if key is not None:
            body_next = body["_links"].get("next", {}).get("href")
            assert body_next == nxt, (body_next, nxt)
        if nxt is None:
            return items, pages
        assert len(pages) < 1000, "pagination does not end"
        r = c.get(nxt)


def okta_error(r: httpx.Response, status: int, code: str) -> dict:
    """Assert an Okta error answer (status and errorCode); returns its body."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["errorCode"] == code, body
    return body
