"""Reading Okta's System Log for an incremental run (reference/okta-incremental.md §1.2).

Polling mode (no `until`, ascending): every event in persistence order, so an event published
before the window but stored late is still read. Pages are followed until one comes back short
(fewer events than its limit) or empty: polling pages always have a next link, and a short page
holds what was there when it was read. Stopping there skips nothing: the next run resumes at or
before that page, as it does for events stored while this run works, and it saves each run the
empty request at the head of the log (the logs bucket allows only 60 a minute per token).

A read resumes from the `after` link the previous run saved, which is the link of the first page
holding an event of that run's last OVERLAP (an overlap window made of Okta's own links: `after`
values are opaque); events already seen there are skipped by uuid. Without a saved link, or when
Okta refuses it, the read starts at `since` (the previous watermark less the overlap) instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from worker.okta.errors import (
    OktaError,
    OktaInvalidRequest,
    OktaPermissionDenied,
    RateLimitWait,
    RepeatedCursor,
)

LOGS_PATH = "/api/v1/logs"
LOGS_LIMIT = 1000
LOG_PERMISSION = "okta.logs.read"
RETENTION = timedelta(days=90)  # Okta keeps 90 days of events
MAX_PAGES = 1000  # 1,000,000 events: past that a full sync is cheaper
MAX_WAIT = 60.0  # seconds one read waits for the rate limiter in all


class LogUnavailable(Exception):
    """The log cannot give a complete change history: `reason` says why (a full sync follows);
    `warning` is set when the user must act (a missing permission)."""

    def __init__(self, reason: str, warning: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.warning = warning


@dataclass
class LogRead:
    events: list[dict[str, Any]] = field(default_factory=list)  # new events (unseen uuids), in log order
    last_link: str | None = None  # the next link after the last page read
    server_now: datetime | None = None  # Okta's time when the read started (Date header, events)
    pages: int = 0
    seen: list[tuple[str, datetime | None]] = field(default_factory=list)  # (uuid, published) of every event read
    # Where the next run resumes: the link of the first page with an event of the overlap window
    # (or the head), and the uuids it will read again from there.
    resume: str | None = None
    resume_ids: list[str] = field(default_factory=list)
    from_after: bool = False  # the read started from a saved `after` link


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _date_header(page: Any) -> datetime | None:
    try:
        value = page.response.headers.get("Date")
        return parsedate_to_datetime(value).astimezone(UTC) if value else None
    except (AttributeError, TypeError, ValueError):
        return None


def get_waiting(get_page: Callable[[str], Any], url: str, waited: list[float]) -> Any:
    """One page, sleeping when the limiter says wait (the planner holds no worker slot for
    long: at most MAX_WAIT seconds in all, counted in `waited`)."""
    while True:
        try:
            return get_page(url)
        except RateLimitWait as wait:
            if waited[0] + wait.seconds > MAX_WAIT:
                raise LogUnavailable(f"the System Log stayed rate limited for over {MAX_WAIT:.0f}s") from None
            waited[0] += wait.seconds
            time.sleep(wait.seconds)


def since_url(since: datetime) -> str:
    return f"{LOGS_PATH}?since={quote(iso(since))}&limit={LOGS_LIMIT}&sortOrder=ASCENDING"


def read_log(get_page: Callable[[str], Any], since: datetime, seen: set[str] = frozenset(),  # type: ignore[assignment]
             after: str | None = None, overlap: timedelta = timedelta(minutes=2)) -> LogRead:
    """All events persisted after the saved `after` link (else since `since`), skipping uuids in
    `seen`; the resume point keeps the last `overlap` of events. Raises LogUnavailable."""
    if after:
        try:
            out = _read(get_page, after, seen, overlap)
            out.from_after = True
            return out
        except LogUnavailable as exc:
            if exc.warning:  # a missing permission: the since read would say the same
                raise
    return _read(get_page, since_url(since), seen, overlap)


def _read(get_page: Callable[[str], Any], first: str, seen: set[str], overlap: timedelta) -> LogRead:
    out = LogRead()
    url: str | None = first
    waited = [0.0]
    newest: datetime | None = None
    # (page url, newest published on it, its uuids), to choose the resume point at the end
    read_pages: list[tuple[str, datetime | None, list[str]]] = []
    while url is not None:
        if out.pages >= MAX_PAGES:
            raise LogUnavailable(f"more than {MAX_PAGES * LOGS_LIMIT} events since the last sync")
        try:
            page = get_waiting(get_page, url, waited)
        except RepeatedCursor:
            break  # the head of the log: Okta's empty polling page links to itself
        except OktaPermissionDenied:
            raise LogUnavailable(
                f"the System Log cannot be read (no {LOG_PERMISSION})",
                f"incremental sync needs {LOG_PERMISSION} (the System Log): grant it to the credentials; "
                "until then every run is a full sync") from None
        except OktaInvalidRequest as exc:  # E0000053: since before what Okta allows
            raise LogUnavailable(f"the cursor is older than the System Log keeps ({exc})") from None
        except OktaError as exc:
            raise LogUnavailable(f"the System Log cannot be read ({exc})") from None
        out.pages += 1
        if out.server_now is None:
            out.server_now = _date_header(page)
        items = page.items if isinstance(page.items, list) else []
        on_page: list[str] = []
        page_newest: datetime | None = None
        for event in items:
            if not isinstance(event, Mapping):
                continue
            published = parse_time(event.get("published"))
            if published is not None and (newest is None or published > newest):
                newest = published
            if published is not None and (page_newest is None or published > page_newest):
                page_newest = published
            if isinstance(event.get("uuid"), str):
                out.seen.append((event["uuid"], published))
                on_page.append(event["uuid"])
            if event.get("uuid") in seen:
                continue
            out.events.append(dict(event))
        if items:
            read_pages.append((url, page_newest, on_page))
        out.last_link = page.next_url or out.last_link
        url = page.next_url if len(items) >= _page_limit(page.next_url) else None
    if newest is not None and (out.server_now is None or newest > out.server_now):
        out.server_now = newest  # Okta's clock, when the Date header lags it
    _choose_resume(out, read_pages, overlap)
    return out


def _page_limit(link: str | None) -> int:
    """The page size a log link asks for (Okta echoes the effective limit in its links)."""
    try:
        return max(1, int(parse_qs(urlsplit(link or "").query)["limit"][0]))
    except (KeyError, IndexError, ValueError):
        return LOGS_LIMIT


def _choose_resume(out: LogRead, read_pages: list[tuple[str, datetime | None, list[str]]],
                   overlap: timedelta) -> None:
    horizon = (out.server_now - overlap) if out.server_now else None
    for i, (url, page_newest, _ids) in enumerate(read_pages):
        if horizon is None or page_newest is None or page_newest >= horizon:
            out.resume = url
            out.resume_ids = sorted({u for _u, _n, ids in read_pages[i:] for u in ids})
            return
    out.resume, out.resume_ids = out.last_link, []
