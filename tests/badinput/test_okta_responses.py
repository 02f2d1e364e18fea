"""Malformed Okta answers through a whole embedded sync (`oktasync --domain ...`, a real process)
against a tiny real HTTP server playing Okta: the sync ends with a clear message (or a warning for
a skipped item), never a traceback, and a foreign next link is never contacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.support.sim import SIM_TOKEN

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("oktasync"))

USER = {"id": "00u1", "status": "ACTIVE", "profile": {"login": "a@x.com", "email": "a@x.com"}}


def _json(body, status: int = 200, **headers) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", **headers}, orjson.dumps(body)


def okta(users_answer):
    """A handler: `users_answer(req)` for the users list, an empty list for every other list."""
    def handle(req):
        path = req.path.split("?", 1)[0]
        if path == "/api/v1/users":
            return users_answer(req)
        return _json([])
    return handle


CASES = {
    "non-json": (lambda req: (200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"), 1, "JSON"),
    "object-not-list": (lambda req: _json({"users": [USER]}), 1, "list"),
    # A malformed object is skipped with a warning; the rest of the sync completes.
    "missing-id": (lambda req: _json([{"status": "ACTIVE", "profile": {}}]), 0,
                   "skipped a malformed object (user: missing or invalid id None)"),
    "wrong-types": (lambda req: _json([{"id": 12345, "status": ["A"], "profile": "nope"}]), 0,
                    "skipped a malformed object (user: missing or invalid id 12345)"),
    "error-body-garbage": (lambda req: (400, {"Content-Type": "application/json"}, b'{"errorCode": 5, "errorSum'), 1,
                           "400"),
}


def _sync(url: str, db: Path) -> subprocess.Popen:
    return subprocess.Popen([EXE, "--domain", url, "--api-token", SIM_TOKEN, "--file", str(db)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_malformed_answers_end_cleanly(local_server, tmp_path):
    # A failing page is retried with backoff (5 attempts, ~40 s): all cases run at once.
    foreign = local_server(lambda req: _json([USER]))
    holder: dict[str, str] = {}

    def looping(req):  # every page points at the same next page again
        return _json([USER], Link=f'<{holder["loop"]}/api/v1/users?after=loop>; rel="next"')

    def to_foreign(req):
        return _json([USER], Link=f'<{foreign.url}/api/v1/users?after=x>; rel="next"')

    cases = {**CASES, "repeated-cursor": (looping, 1, "cursor"), "foreign-next": (to_foreign, 1, "next link")}
    servers = {name: local_server(okta(answer)) for name, (answer, _, _) in cases.items()}
    holder["loop"] = servers["repeated-cursor"].url
    procs = {name: _sync(srv.url, tmp_path / f"{name}.db") for name, srv in servers.items()}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=150)
        _, code, words = cases[name]
        out = stdout + stderr
        assert "Traceback" not in out, (name, out[-3000:])
        assert SIM_TOKEN not in out, name
        assert proc.returncode == code, (name, out[-2000:])
        assert words in out, (name, out[-2000:])
    assert foreign.requests == []  # credentials never went to the other host
    # Bounded: the looping page is retried like any failed page (5 attempts), never an endless loop.
    assert sum("after=loop" in r["path"] for r in servers["repeated-cursor"].requests) <= 6
