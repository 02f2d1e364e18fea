"""The embedded mode's read-ahead: a list's next page is fetched while the page before it is
written, each page is still requested once, and a failed read-ahead leaves the page step to fetch
the page and see the error itself."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from worker.engine.read_ahead import ReadAhead


@dataclass
class Page:
    items: list
    next_url: str | None


class Pages:
    """A list of `n` pages linked p0 -> p1 -> ...; `fail` maps a url to how many of its requests fail."""

    def __init__(self, n: int, fail: dict[str, int] | None = None):
        self.n, self.fail = n, dict(fail or {})
        self.asked: list[tuple[str, str]] = []  # (url, thread name)
        self.lock = threading.Lock()

    def get_page(self, url: str, headers=None) -> Page:
        with self.lock:
            self.asked.append((url, threading.current_thread().name))
            if self.fail.get(url, 0) > 0:
                self.fail[url] -= 1
                raise RuntimeError(f"boom at {url}")
        i = int(url[1:])
        return Page([i], f"p{i + 1}" if i + 1 < self.n else None)


def test_each_next_page_is_fetched_ahead_and_requested_once():
    source, ahead = Pages(4), ReadAhead(2, limit=8)
    try:
        got = [ahead.get_page(source, f"p{i}", None).items[0] for i in range(4)]
    finally:
        ahead.close()
    assert got == [0, 1, 2, 3]
    assert sorted(u for u, _ in source.asked) == ["p0", "p1", "p2", "p3"]  # once each
    assert all(t.startswith("oktasync-ahead") for u, t in source.asked if u != "p0")
    assert ahead.used == 3


def test_a_failed_read_ahead_is_fetched_again_by_the_page_step():
    source, ahead = Pages(3, fail={"p1": 1}), ReadAhead(2, limit=8)
    try:
        assert ahead.get_page(source, "p0", None).items == [0]
        assert ahead.get_page(source, "p1", None).items == [1]  # its read-ahead failed: asked again
    finally:
        ahead.close()
    assert [u for u, _ in source.asked].count("p1") == 2


def test_the_page_steps_own_request_raises_what_okta_answered():
    source, ahead = Pages(3, fail={"p1": 2}), ReadAhead(2, limit=8)
    try:
        ahead.get_page(source, "p0", None)
        with pytest.raises(RuntimeError, match="boom at p1"):
            ahead.get_page(source, "p1", None)
    finally:
        ahead.close()


def test_no_more_pages_are_held_than_the_limit():
    source, ahead = Pages(2), ReadAhead(2, limit=0)
    try:
        ahead.get_page(source, "p0", None)
        ahead.get_page(source, "p1", None)
    finally:
        ahead.close()
    assert ahead.used == 0 and [u for u, _ in source.asked] == ["p0", "p1"]
