"""Bodies of recorded real Okta responses (/work/shared/okta-recordings), looked up by method and path."""

from __future__ import annotations

import functools
import glob
import json
import os
import re

import pytest

RECORDINGS = os.environ.get("OKTA_RECORDINGS", "/work/shared/okta-recordings")
SKIP = {"test_org_it", "test_principal_rate_limits_it"}  # nothing the connector lists


@functools.cache
def _interactions() -> list[tuple[str, str, int, str]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for path in sorted(glob.glob(os.path.join(RECORDINGS, "*", "*.yaml"))):
        if os.path.basename(os.path.dirname(path)) in SKIP:
            continue
        with open(path) as fh:
            data = yaml.load(fh, Loader=loader)
        for it in data.get("interactions", []):
            req, resp = it["request"], it["response"]
            uri = re.sub(r"^https?://[^/]+", "", req["uri"])
            out.append((req["method"], uri, resp["status"]["code"], resp["body"]["string"]))
    return out


def bodies(method: str, path_regex: str, status: int = 200) -> list:
    """Every recorded JSON body for `method` on a path (query stripped) matching `path_regex`."""
    if not os.path.isdir(RECORDINGS):
        pytest.skip(f"recordings not found at {RECORDINGS}")
    rx = re.compile(path_regex)
    found = []
    for m, uri, code, body in _interactions():
        if m == method and code == status and rx.fullmatch(uri.split("?")[0]) and body:
            found.append(json.loads(body))
    return found
