"""`oktasync flower` refuses to start Flower without authentication."""

from __future__ import annotations

from click.testing import CliRunner

from worker.observability.flower import OKTA_PROVIDER, auth_problem
from worker.observability.flower import flower as flower_cmd

OAUTH = {"FLOWER_AUTH_PROVIDER": OKTA_PROVIDER, "FLOWER_AUTH": r".*@example\.com", "FLOWER_OAUTH2_KEY": "0oa1",
         "FLOWER_OAUTH2_SECRET": "s" * 40, "FLOWER_OAUTH2_REDIRECT_URI": "https://flower.example.com/login",
         "FLOWER_OAUTH2_OKTA_BASE_URL": "https://example.okta.com/oauth2"}


def test_auth_required():
    assert "needs authentication" in auth_problem({})
    assert "needs authentication" in auth_problem({"FLOWER_BASIC_AUTH": "  "})
    assert auth_problem({"FLOWER_BASIC_AUTH": "ops:a-long-password-123"}) is None
    assert auth_problem({}, ["--basic_auth=ops:a-long-password-123"]) is None
    assert auth_problem({}, ["--basic-auth", "ops:a-long-password-123"]) is None
    assert "no password" in auth_problem({"FLOWER_BASIC_AUTH": "ops"})
    assert "no password" in auth_problem({"FLOWER_BASIC_AUTH": "ops:a-long-password-123,other:"})
    assert "shorter than" in auth_problem({"FLOWER_BASIC_AUTH": "ops:short"})
    assert "UNAUTHENTICATED" in auth_problem({"FLOWER_BASIC_AUTH": "ops:a-long-password-123",
                                              "FLOWER_UNAUTHENTICATED_API": "true"})


def test_oauth_must_be_complete():
    assert auth_problem(OAUTH) is None
    partial = {k: v for k, v in OAUTH.items() if k != "FLOWER_OAUTH2_SECRET"}
    assert auth_problem(partial) == "Flower OAuth is incomplete: set FLOWER_OAUTH2_SECRET"
    no_base = {k: v for k, v in OAUTH.items() if k != "FLOWER_OAUTH2_OKTA_BASE_URL"}
    assert "FLOWER_OAUTH2_OKTA_BASE_URL" in auth_problem(no_base)


def test_command_refuses_without_auth(monkeypatch):
    for name in ("FLOWER_BASIC_AUTH", *OAUTH):
        monkeypatch.delenv(name, raising=False)
    res = CliRunner().invoke(flower_cmd, [])
    assert res.exit_code == 1
    assert "refusing to start Flower" in res.output and "FLOWER_BASIC_AUTH" in res.output


def test_task_messages_name_their_tenant_for_flower(pg_url, redis_url, secret_key):
    """Flower lists a task's args and kwargs as the message's argsrepr/kwargsrepr: ours carry the
    tenant and run, so a page task is not just a stream id and a cursor."""
    import json

    import redis

    from worker.app import make_app
    from worker.config import Settings
    from worker.store.db import make_engine, make_session_factory
    from worker.store.migrate import migrate
    from worker.store.tables import SyncRun, SyncStream
    from worker.store.tenants import create_tenant

    migrate(pg_url)
    engine = make_engine(pg_url)
    with make_session_factory(engine)() as s:
        tenant = create_tenant(s, "acme", "acme.okta.com", {"api_token": "x" * 40})
        s.flush()
        run = SyncRun(tenant_id=tenant.id, state="running")
        s.add(run)
        s.flush()
        stream = SyncStream(run_id=run.id, kind="users", parent="", state="active")
        s.add(stream)
        s.commit()
        tenant_id, run_id, stream_id = tenant.id, run.id, stream.id
    engine.dispose()

    app = make_app(Settings(broker_url=redis_url, redis_url=redis_url, database_url=pg_url))
    app.send_task("oktasync.sync.page", args=[stream_id, "/api/v1/users?limit=200"])
    app.send_task("oktasync.sync.start", args=[run_id])
    client = redis.Redis.from_url(redis_url)
    shown = sorted(json.loads(raw)["headers"]["kwargsrepr"] for raw in client.lrange("sync", 0, -1))
    client.close()
    assert shown == sorted([repr({"tenant_id": tenant_id, "run_id": run_id})] * 2)
