"""Read-ahead for the embedded mode: while a page is mapped and written, its list's next page is
already on its way.

A list's pages are sequential (each cursor comes from the page before), so a list of n pages
costs n round trips plus n mappings and writes, one after the other; with read-ahead it costs
the round trips alone. This pays only where the next page is handled by the process that read
ahead, which the embedded mode is (one process, one file). A Celery worker may hand the next
page to another process, which would fetch it again, so workers do not read ahead.

A page read ahead is the same request the page step would send a few milliseconds later, through
the same client and rate limiter. When it fails (an error, a rate-limit wait), it is dropped and
the page step sends its own request and sees the error itself (the connector decides what it
means). Nothing is read ahead of a list the run no longer reads, except the one page already on
its way when that is decided; pages never collected are capped at `limit` and dropped at close().
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from worker.engine.runtime import PageSource


class ReadAhead:
    def __init__(self, threads: int, limit: int):
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="oktasync-ahead")
        self._pending: dict[tuple[int, str, tuple[tuple[str, str], ...]], Future[Any]] = {}
        self._lock = threading.Lock()
        self._limit = limit
        self.used = 0  # pages the page step took from here (for tests and the bench)

    def get_page(self, source: PageSource, url: str, headers: Mapping[str, str] | None) -> Any:
        """The page at `url`: the one read ahead if there is one, else fetched now; then the page
        after it, when there is one, is read ahead."""
        sent = dict(headers) if headers else None  # one copy for this page and the next
        with self._lock:
            ahead = self._pending.pop(_key(source, url, sent), None)
        page = None
        if ahead is not None:
            try:
                page = ahead.result()
            except Exception:  # noqa: BLE001 - the page step asks again and handles what it gets
                page = None
            else:
                with self._lock:
                    self.used += 1
        if page is None:
            page = source.get_page(url, headers=sent)
        if page.next_url:
            self._start(source, page.next_url, sent)
        return page

    def _start(self, source: PageSource, url: str, headers: dict[str, str] | None) -> None:
        key = _key(source, url, headers)
        with self._lock:
            if key in self._pending or len(self._pending) >= self._limit:
                return
            self._pending[key] = self._pool.submit(source.get_page, url, headers=headers)

    def close(self) -> None:
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for f in pending:
            f.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _key(source: PageSource, url: str, headers: Mapping[str, str] | None) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    return id(source), url, tuple(sorted((headers or {}).items()))
