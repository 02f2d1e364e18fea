"""Okta's timestamp format for changes made while the simulator runs."""

from __future__ import annotations

import time


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"
