"""Okta -> resources, entitlements and grants (baton-okta's model), as pure page handlers.

The engine's contract lives in worker.connector.streams; worker.connector.crawl runs it in-process.
"""

from worker.connector.options import InvalidOptions, SyncOptions, email_allowed, normalize_domains
from worker.connector.streams import (
    PHASES,
    PageResult,
    StreamSpec,
    UnknownStream,
    handle_error,
    handle_page,
    initial_streams,
    static_resources,
)

__all__ = [
    "InvalidOptions", "SyncOptions", "email_allowed", "normalize_domains", "PHASES", "PageResult",
    "StreamSpec", "UnknownStream", "handle_error", "handle_page", "initial_streams", "static_resources",
]
