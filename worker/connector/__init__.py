"""Okta -> resources, entitlements and grants (baton-okta's model), and the Okta side of provisioning.

One module per resource type in worker.connector.types, tied together by its registry `TYPES`;
the page plumbing in worker.connector.pages; what a failed page means in worker.connector.decisions;
worker.connector.crawl runs the streams in-process.
"""

from worker.connector.decisions import Fail, Retry, Skip, handle_error
from worker.connector.options import InvalidOptions, SyncOptions, email_allowed, normalize_domains
from worker.connector.pages import PageResult, StreamSpec
from worker.connector.types import UnknownStream, handle_page, initial_streams, static_resources

__all__ = [
    "Fail", "InvalidOptions", "PageResult", "Retry", "Skip", "StreamSpec", "SyncOptions", "UnknownStream",
    "email_allowed", "handle_error", "handle_page", "initial_streams", "normalize_domains", "static_resources",
]
