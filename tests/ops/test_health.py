"""`oktasync health` names what is wrong (real PostgreSQL and Redis; no workers here, so the
worker check fails; the end-to-end Procfile test sees it pass with workers running)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from click.testing import CliRunner

from tests.support.services import free_port
from worker.commands.health import health


def _env(db: str, broker: str, redis_url: str | None = None) -> dict[str, str]:
    return {"OKTASYNC_DATABASE_URL": db, "OKTASYNC_BROKER_URL": broker, "OKTASYNC_REDIS_URL": redis_url or broker}


def run_cli(args: list[str], env: dict[str, str]) -> SimpleNamespace:
    """The command in this process (Click's runner), with stdout and stderr apart."""
    assert args[0] == "health"
    res = CliRunner().invoke(health, args[1:], env=env)
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def _checks(res) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(res.stdout)["checks"]}


def test_services_up_but_no_worker_answers(pg_url, redis_url):
    from worker.store.migrate import migrate

    migrate(pg_url)
    res = run_cli(["health", "--timeout", "1", "--json"], _env(pg_url, redis_url))
    assert res.returncode == 1
    checks = _checks(res)
    assert all(checks[n]["ok"] for n in ("settings", "database", "redis", "broker")), checks
    assert not checks["workers"]["ok"] and "no worker answered" in checks["workers"]["detail"]
    ok = run_cli(["health", "--no-workers"], _env(pg_url, redis_url))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok   database" in ok.stdout


def test_unmigrated_database_says_to_upgrade(pg_url, redis_url):
    res = run_cli(["health", "--no-workers"], _env(pg_url, redis_url))
    assert res.returncode == 1
    assert "FAIL database" in res.stdout and "oktasync db upgrade" in res.stdout
    assert "unhealthy: database" in res.stderr


def test_unreachable_services_are_named(pg_url, tmp_path):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    dead_pg = f"postgresql://postgres:pw-not-shown@127.0.0.1:{free_port()}/nothing"
    res = run_cli(["health", "--timeout", "1", "--json"], _env(dead_pg, dead_redis))
    assert res.returncode == 1
    checks = _checks(res)
    assert not checks["database"]["ok"] and "cannot connect" in checks["database"]["detail"]
    assert not checks["redis"]["ok"] and not checks["broker"]["ok"]
    assert checks["workers"]["detail"].startswith("not asked")
    assert "pw-not-shown" not in res.stdout + res.stderr
    # A SQLite path that does not exist is reported, not created.
    missing = tmp_path / "missing.db"
    res = run_cli(["health", "--no-workers"], _env(f"sqlite:///{missing}", dead_redis))
    assert res.returncode == 1 and "does not exist" in res.stdout and not missing.exists()


def test_bad_setting_is_named(redis_url):
    env = {**_env("sqlite:///x.db", redis_url), "OKTASYNC_VISIBILITY_TIMEOUT": "5"}
    res = run_cli(["health"], env)
    assert res.returncode == 1 and "OKTASYNC_VISIBILITY_TIMEOUT" in res.stdout
