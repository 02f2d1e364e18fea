"""A running oktasim process, and the super-admin token every simulator started without
--api-token accepts."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

SIM_TOKEN = "00sim-super-admin-token-0000000000000000000"


class Sim:
    """A running oktasim process."""

    LISTEN = re.compile(r"^oktasim listening on (http://\S+)$")

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oktasim", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline().strip()
        match = self.LISTEN.match(line)
        if not match:
            self.proc.kill()
            err = self.proc.stderr.read()
            raise RuntimeError(f"oktasim did not start: {line!r} {err[-2000:]}")
        self.url = match.group(1)
        self.admin = httpx.Client(base_url=self.url, timeout=30)

    def state(self) -> dict:
        return self.admin.get("/__sim/state").raise_for_status().json()

    def stats(self) -> dict:
        return self.admin.get("/__sim/stats").raise_for_status().json()

    def reset_stats(self) -> None:
        self.admin.post("/__sim/reset-stats").raise_for_status()

    def stop(self) -> None:
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

# A small org for the distributed end-to-end tests (a few seconds a sync).
SMALL = ["--users", "60", "--groups", "12", "--apps", "6", "--window-seconds", "5"]
