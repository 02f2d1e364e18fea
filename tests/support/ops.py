"""Operations test helpers: an env file made from deploy/.env.example, CLI runs, /proc scans."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.paths import BIN, ROOT

ENV_EXAMPLE = ROOT / "deploy" / ".env.example"


def env_file_from_example(path: Path, overrides: dict[str, str]) -> dict[str, str]:
    """deploy/.env.example with `overrides` applied (every overridden name must be in the example:
    the test fails if the example loses a setting the deploy relies on). Returns the settings."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    seen: set[str] = set()
    out: list[str] = []
    values: dict[str, str] = {}
    for line in lines:
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m and m.group(1) in overrides:
            line = f"{m.group(1)}={overrides[m.group(1)]}"
            seen.add(m.group(1))
        if m:
            name, _, value = line.partition("=")
            values[name] = value
        out.append(line)
    missing = set(overrides) - seen
    assert not missing, f"deploy/.env.example has no line for {sorted(missing)}"
    path.write_text("\n".join(out) + "\n")
    return values


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "oktasync"), *args], env=env, cwd=str(ROOT), capture_output=True, text=True,
                          timeout=timeout)


def processes_with_marker(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes whose environment holds `marker`."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read():
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    continue  # a zombie already exited; its parent has not reaped it yet
        except OSError:
            continue
        found.append((int(entry), cmd))
    return found
