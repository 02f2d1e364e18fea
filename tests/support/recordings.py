"""The recorded real Okta traffic kept in tests/recordings/ (VCR cassettes from okta-sdk-python,
Apache-2.0, see its README and NOTICE), and lookups of recorded bodies by method and path."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
# The cassettes hold no 429: the documented body stands in for it.
DOCUMENTED_429 = RECORDINGS / "okta-429-documented.json"
# Folders whose calls the connector never makes.
NOT_CONNECTOR = {"test_org_it", "test_principal_rate_limits_it"}


@functools.cache
def _connector_interactions() -> list[tuple[str, str, int, str]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for path in sorted(RECORDINGS.glob("*/*.yaml")):
        if path.parent.name in NOT_CONNECTOR:
            continue
        data = yaml.load(path.read_text(), Loader=loader)
        for it in data.get("interactions", []):
            req, resp = it["request"], it["response"]
            uri = re.sub(r"^https?://[^/]+", "", req["uri"])
            out.append((req["method"], uri, resp["status"]["code"], resp["body"]["string"]))
    return out


def bodies(method: str, path_regex: str, status: int = 200) -> list:
    """Every recorded JSON body for `method` on a path (query stripped) matching `path_regex`."""
    if not RECORDINGS.is_dir():
        pytest.fail(f"the Okta recordings are missing: expected them in {RECORDINGS}")
    rx = re.compile(path_regex)
    found = []
    for m, uri, code, body in _connector_interactions():
        if m == method and code == status and rx.fullmatch(uri.split("?")[0]) and body:
            found.append(json.loads(body))
    return found
