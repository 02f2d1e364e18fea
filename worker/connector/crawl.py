"""A small sequential in-process driver for the connector's streams (the connector's tests).

The production engine runs the same `handle_page` / `handle_error` in Celery page tasks; this one walks
the streams breadth-first in one thread, so its output is what a run writes before the store's finalize
step (group-grant expansion, pruning of grants whose principal is not a resource of the run).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from worker.connector.decisions import Skip, handle_error
from worker.connector.options import SyncOptions
from worker.connector.pages import PageResult, StreamSpec
from worker.connector.types import handle_page, initial_streams, static_resources


def fetch_page(client: Any, spec: StreamSpec, url: str) -> Any:
    """One page, with the stream's request headers."""
    return client.get_page(url, headers=spec.header_dict or None)


def crawl(client: Any, options: SyncOptions, *, max_pages: int | None = None) -> Iterator[PageResult]:
    """Yield the static resources, then one PageResult per page (or skipped stream) of every stream.

    Errors that `handle_error` does not skip propagate (the run fails)."""
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
            except Exception as exc:  # noqa: BLE001 - handle_error decides: skip with a warning, or fail
                decision = handle_error(spec, exc, options)
                if not isinstance(decision, Skip):
                    raise
                yield PageResult(warnings=[decision.warning])
                break
            result = handle_page(replace(spec, url=url), page.items, options)
            queue.extend(result.children)
            yield result
            pages += 1
            if max_pages is not None and pages >= max_pages:
                return
            url = page.next_url or result.next_url
