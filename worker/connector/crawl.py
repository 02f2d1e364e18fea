"""A small sequential in-process driver for the connector's streams (tests, `oktasync check`).

The production engine runs the same `handle_page` / `handle_error` in Celery page tasks; this one walks
the streams breadth-first in one thread, so its output is what a run writes before the store's finalize
step (group-grant expansion, pruning of grants whose principal is not a resource of the run).
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from worker.connector.options import SyncOptions
from worker.connector.streams import (
    PageResult,
    StreamSpec,
    handle_error,
    handle_page,
    initial_streams,
    static_resources,
)


def _supports_headers(client: Any) -> bool:
    try:
        return "headers" in inspect.signature(client.get_page).parameters
    except (TypeError, ValueError):
        return False


def fetch_page(client: Any, spec: StreamSpec, url: str) -> Any:
    """One page with the stream's request headers, when the client can send them."""
    if spec.headers and _supports_headers(client):
        return client.get_page(url, headers=spec.header_dict)
    return client.get_page(url)


def crawl(client: Any, options: SyncOptions, *, max_pages: int | None = None) -> Iterator[PageResult]:
    """Yield the static resources, then one PageResult per page (or skipped stream) of every stream.

    Errors that `handle_error` does not turn into a warning propagate (the run fails)."""
    yield static_resources(options)
    queue: deque[StreamSpec] = deque(initial_streams(options))
    pages = 0
    while queue:
        spec = queue.popleft()
        url: str | None = spec.url
        seen: set[str] = set()
        while url is not None:
            if url in seen:  # a cursor that comes back would loop forever
                raise RuntimeError(f"stream {spec.kind} ({spec.parent or 'top'}) returned an already followed link")
            seen.add(url)
            try:
                page = fetch_page(client, spec, url)
            except Exception as exc:  # noqa: BLE001 - handle_error decides: warning or re-raise
                yield handle_error(spec, exc, options)
                break
            result = handle_page(replace(spec, url=url), page.items, options)
            queue.extend(result.children)
            yield result
            pages += 1
            if max_pages is not None and pages >= max_pages:
                return
            url = page.next_url or result.next_url
