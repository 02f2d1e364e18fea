"""Real Redis and PostgreSQL for the tests.

Order of preference: the URL in REDIS_URL / DATABASE_URL (under pytest-xdist, worker gwN uses
Redis database REDIS_URL's + N); otherwise a throwaway server started
from the binaries on PATH (or PostgreSQL's usual bin folders); otherwise the test session fails
with a message that says what to install. Nothing is ever skipped silently.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field


class ServiceUnavailable(RuntimeError):
    pass


START_ATTEMPTS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceUnavailable(f"server on port {port} did not start within {timeout}s")


@dataclass
class Service:
    url: str
    owned: bool = False
    _cleanup: list = field(default_factory=list)

    def stop(self) -> None:
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception:
                pass


def xdist_worker_number() -> int:
    """0 for a plain run, N for pytest-xdist's worker gwN."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


def with_db(url: str, db: int) -> str:
    """`url` pointing at Redis database `db` (the path of a redis:// URL is the database number)."""
    head, sep, tail = url.rpartition("/")
    if sep and head.count("/") >= 2 and (tail == "" or tail.isdigit()):
        return f"{head}/{db}"
    return f"{url.rstrip('/')}/{db}"


def db_of(url: str) -> int:
    tail = url.rpartition("/")[2]
    return int(tail) if url.count("/") >= 3 and tail.isdigit() else 0


def redis_service() -> Service:
    url = os.environ.get("REDIS_URL")
    if url:
        # The tests flush their database: each xdist worker takes the next one after REDIS_URL's
        # (wrapping within Redis's 16), so parallel workers never flush or consume each other's.
        return Service(url=with_db(url, (db_of(url) + xdist_worker_number()) % 16))
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceUnavailable(
            "Redis is needed by the tests: set REDIS_URL=redis://host:port/0, or install "
            "redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)."
        )
    workdir = tempfile.mkdtemp(prefix="oktasync-redis-")
    # A free port can be taken by another process before the server binds it (parallel test
    # sessions on one machine): the server then exits, and another port is tried.
    for _ in range(START_ATTEMPTS):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if _wait_started(proc, port):
            svc = Service(url=f"redis://127.0.0.1:{port}/0", owned=True)
            svc._cleanup += [lambda: shutil.rmtree(workdir, ignore_errors=True), proc.wait, proc.kill]
            return svc
        proc.kill()
        proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)
    raise ServiceUnavailable(f"redis-server did not start ({START_ATTEMPTS} attempts on free ports)")


def _wait_started(proc: subprocess.Popen, port: int, timeout: float = 20.0) -> bool:
    """True once the server on `port` answers and is our process (not one that took the port)."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=0.5)
        try:
            return client.info("server")["process_id"] == proc.pid
        except redis.RedisError:
            time.sleep(0.1)
        finally:
            client.close()
    return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) + sorted(
        glob.glob(f"/usr/local/opt/postgresql*/bin/{name}")
    )
    return candidates[-1] if candidates else None


def postgres_service() -> Service:
    url = os.environ.get("DATABASE_URL")
    if url:
        return Service(url=url)
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise ServiceUnavailable(
            "PostgreSQL is needed by the tests: set DATABASE_URL=postgresql://user@host/db, or "
            "install the server (Debian/Ubuntu: apt-get install postgresql; macOS: brew install "
            "postgresql) so that initdb and pg_ctl can be found."
        )
    workdir = tempfile.mkdtemp(prefix="oktasync-pg-")
    datadir = os.path.join(workdir, "data")
    log = os.path.join(workdir, "log")
    # PostgreSQL refuses to run as root: run it as the 'postgres' (or 'nobody') user then.
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        shutil.chown(workdir, user=user)
        prefix = ["runuser", "-u", user, "--"]
    subprocess.run(prefix + [initdb, "-D", datadir, "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The port is chosen right before the start, and another one tried if it was taken meanwhile.
    for _ in range(START_ATTEMPTS):
        port = free_port()
        started = subprocess.run(
            prefix + [pg_ctl, "-D", datadir, "-l", log, "-w", "-o",
                      f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if started.returncode == 0:
            svc = Service(url=f"postgresql://postgres@127.0.0.1:{port}/postgres", owned=True)
            svc._cleanup += [
                lambda: shutil.rmtree(workdir, ignore_errors=True),
                lambda: subprocess.run(prefix + [pg_ctl, "-D", datadir, "-m", "immediate", "stop"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            ]
            return svc
    with open(log, errors="replace") as fh:
        tail = fh.read()[-2000:]
    shutil.rmtree(workdir, ignore_errors=True)
    raise ServiceUnavailable(f"PostgreSQL did not start ({START_ATTEMPTS} attempts on free ports):\n{tail}")
