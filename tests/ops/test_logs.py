"""Redaction and the log formatters: secrets in every shape they take here never reach the output."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.support.sim import SIM_TOKEN
from worker.observability import logs
from worker.observability.redact import Redactor, redact
from worker.store.secrets import generate_key

JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6ImtpZC0xIn0.eyJpc3MiOiIwb2ExIiwiYXVkIjoiaHR0cHM6Ly94In0."
       "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU")


@pytest.fixture
def pem(rsa_key) -> str:
    return rsa_key[0]


def _body_lines(pem_text: str) -> list[str]:
    return [line for line in pem_text.strip().splitlines() if not line.startswith("-----")]


def test_every_shape_is_masked(pem):
    fernet = generate_key()
    cases = [
        f"Authorization: SSWS {SIM_TOKEN}",
        f"headers={{'Authorization': 'SSWS {SIM_TOKEN}'}}",
        f"Authorization: Bearer {JWT}",
        f"Authorization: DPoP {JWT}",
        f"DPoP: {JWT}",
        f"client_assertion={JWT}&client_assertion_type=urn%3Aietf%3Aparams",
        f"token {SIM_TOKEN} rejected",
        f"key: {pem}",
        "key: " + pem.replace("\n", "\\n"),  # a PEM inside a repr / JSON string
        f"cut short: {pem[:300]}",  # no END line
        f"{{'api_token': '{SIM_TOKEN}'}}",
        f'{{"private_key": "{pem[:200]}"}}',
        f"OKTASYNC_SECRET_KEY={fernet}",
        f"keys {fernet},{generate_key()}",
        "postgresql://oktasync:hunter2-db-pass@db:5432/oktasync",
        "redis://:redis-pass-123@redis:6379/0",
        "client_secret=abcDEF123456ghi&grant_type=client_credentials",
        "password: s3cr3t-value",
    ]
    for text in cases:
        out = redact(text)
        assert SIM_TOKEN not in out, out
        assert JWT.split(".")[0] not in out and JWT.split(".")[2] not in out, out
        assert fernet not in out, out
        for line in _body_lines(pem):
            assert line[:40] not in out, out
        for secret in ("hunter2-db-pass", "redis-pass-123", "abcDEF123456ghi", "s3cr3t-value"):
            assert secret not in out, out


def test_ordinary_lines_are_left_alone():
    for text in [
        "task oktasync.sync.page SUCCESS 0.084s id=1837fd93-436e-4d46-9e7a-baaf14f21aa8 tenant_id=1 run_id=7",
        "page of users failed (attempt 2/5): OktaRateLimited: 429 E0000047 [GET /api/v1/users]",
        "GET https://acme.okta.com/api/v1/groups/00gVjrGJAu87mWCky5d7/users?limit=200&after=00uSguqsNxdmUKJe15d7",
        "grant group:00g1abc2def3GHI4jk5:member user:00u1abc2def3GHI4jk5",
        "redis://127.0.0.1:6379/0",
    ]:
        assert redact(text) == text


def test_literal_secrets_from_the_environment():
    odd = "not-shaped-like-anything-known-42"
    r = Redactor.from_env({"OKTASYNC_API_TOKEN": odd, "FLOWER_BASIC_AUTH": "ops:flower-pass-9876,b:other-pass-4321",
                           "OKTASYNC_DATABASE_URL": "postgresql://u:p4ss-w0rd-xyz@h/db"})
    out = r(f"{odd} flower-pass-9876 other-pass-4321 p4ss-w0rd-xyz")
    for secret in (odd, "flower-pass-9876", "other-pass-4321", "p4ss-w0rd-xyz"):
        assert secret not in out


def _logger(name: str, monkeypatch, fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(name)
    logger.handlers = [logging.StreamHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    assert logs.install(logger, json_lines=fmt == "json") == 1
    return logger, stream


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_formatters_redact_messages_args_extras_and_tracebacks(monkeypatch, pem, fmt):
    logger, stream = _logger(f"ops.test.{fmt}", monkeypatch, fmt)
    logger.info("calling with %s", f"SSWS {SIM_TOKEN}", extra={"assertion": JWT})
    try:
        raise ValueError(f"bad key {pem}")
    except ValueError:
        logger.exception("failed for token %s", SIM_TOKEN)
    token = logs.task_context.set({"task": "oktasync.sync.page", "task_id": "t1", "tenant_id": 3, "run_id": 9,
                                   "stream_id": 27})
    try:
        logger.warning("inside a task")
    finally:
        logs.task_context.reset(token)
    out = stream.getvalue()
    assert SIM_TOKEN not in out and JWT not in out
    assert all(line[:40] not in out for line in _body_lines(pem))
    assert "ValueError" in out and "calling with SSWS [REDACTED]" in out
    if fmt == "json":
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert len(records) == 3
        assert records[1]["level"] == "ERROR" and "Traceback" in records[1]["exception"]
        assert {k: records[2][k] for k in ("tenant_id", "run_id", "stream_id", "task")} == {
            "tenant_id": 3, "run_id": 9, "stream_id": 27, "task": "oktasync.sync.page"}
        assert records[0]["assertion"] == "[REDACTED JWT]"


def test_install_wraps_existing_formatters_and_is_idempotent(monkeypatch):
    logger, stream = _logger("ops.test.wrap", monkeypatch, "text")
    handler = logger.handlers[0]
    handler.setFormatter(logging.Formatter("CUSTOM %(levelname)s %(message)s"))
    assert logs.install(logger) == 1
    assert logs.install(logger) == 0
    logger.info("x %s", f"Bearer {JWT}")
    assert stream.getvalue() == "CUSTOM INFO x Bearer [REDACTED]\n"
