"""Credentials at rest: encrypted, rotatable, clear errors, never in clear anywhere."""

from __future__ import annotations

import os
import stat

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.support.store import TEST_TOKEN, user
from worker.cli import main
from worker.store.secrets import ENV_VAR, SecretKeyError, generate_key, load_keys, local_key_file
from worker.store.tables import Tenant
from worker.store.tenants import (
    TenantError,
    create_tenant,
    get_tenant,
    list_tenants,
    remove_tenant,
    rotate_credentials,
    tenant_credentials,
    update_tenant,
)
from worker.store.writes import write_page

PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvSecretSecretSecret\n-----END PRIVATE KEY-----\n"


def test_database_never_holds_the_token_in_clear(store):
    store.tenant("acme")
    with store.Session() as s:
        create_tenant(s, "oauth", "oauth.okta.com", {"client_id": "0oa1", "private_key": PRIVATE_KEY, "key_id": "k1"})
        s.commit()
        raw = s.execute(sa.select(Tenant.credentials)).scalars().all()
        dumped = "".join(str(tuple(r)) for r in s.execute(sa.select(Tenant.__table__)).all())
    assert all(TEST_TOKEN.encode() not in bytes(b) and b"MIIEvSecret" not in bytes(b) for b in raw)
    assert TEST_TOKEN not in dumped and "MIIEvSecret" not in dumped
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        blob = open(store.url.removeprefix("sqlite:///"), "rb").read()
        assert TEST_TOKEN.encode() not in blob and b"MIIEvSecret" not in blob
    with store.Session() as s:
        acme, oauth = get_tenant(s, "acme"), get_tenant(s, "oauth")
        creds = tenant_credentials(acme)
        assert creds == {"api_token": TEST_TOKEN} and acme.auth_method == "api_token"
        assert TEST_TOKEN not in repr(creds) and TEST_TOKEN not in str(creds) and TEST_TOKEN not in repr(acme)
        assert tenant_credentials(oauth)["private_key"] == PRIVATE_KEY and oauth.auth_method == "private_key_jwt"


def test_rotation_old_keys_decrypt_new_writes_use_newest(store, monkeypatch, secret_key):
    store.tenant("acme")
    new = generate_key()
    monkeypatch.setenv(ENV_VAR, f"{new},{secret_key}")
    with store.Session() as s:
        assert tenant_credentials(get_tenant(s, "acme"))["api_token"] == TEST_TOKEN
        assert rotate_credentials(s) == 1
        s.commit()
    monkeypatch.setenv(ENV_VAR, new)  # the old key is gone: rotated rows still decrypt
    with store.Session() as s:
        assert tenant_credentials(get_tenant(s, "acme"))["api_token"] == TEST_TOKEN
        update_tenant(s, "acme", credentials={"api_token": "00other"})
        s.commit()
        assert tenant_credentials(get_tenant(s, "acme")) == {"api_token": "00other"}


def test_wrong_or_missing_key_is_a_clear_error(store, monkeypatch):
    store.tenant("acme")
    other = generate_key()
    monkeypatch.setenv(ENV_VAR, other)
    with store.Session() as s:
        tenant = get_tenant(s, "acme")
        with pytest.raises(SecretKeyError, match=f"tenant 'acme' cannot be decrypted with the keys in {ENV_VAR}") as exc:
            tenant_credentials(tenant)
        assert other not in str(exc.value)
        monkeypatch.delenv(ENV_VAR)
        with pytest.raises(SecretKeyError, match=f"{ENV_VAR} is not set.*oktasync keygen"):
            tenant_credentials(tenant)
        with pytest.raises(SecretKeyError, match=f"{ENV_VAR} is not set"):
            create_tenant(s, "b", "b.okta.com", {"api_token": "x"})
    with pytest.raises(SecretKeyError, match="key #2 is not a Fernet key") as exc:
        load_keys(f"{other},not-a-key-but-secret-ish")
    assert "secret-ish" not in str(exc.value)


def test_tenant_crud_and_validation(store):
    t = store.tenant("acme", options={"skip_app_groups": True}, sync_interval=600)
    with store.Session() as s:
        with pytest.raises(TenantError, match="already exists"):
            create_tenant(s, "acme", "acme.okta.com", {"api_token": "x"})
        with pytest.raises(TenantError, match="missing private_key"):
            create_tenant(s, "x", "x.okta.com", {"client_id": "0oa1"})
        with pytest.raises(TenantError, match="need either 'api_token'"):
            create_tenant(s, "x", "x.okta.com", {"password": "x"})
        with pytest.raises(TenantError, match="domain must be"):
            create_tenant(s, "x", "https://x.okta.com/admin", {"api_token": "x"})
        tenant = update_tenant(s, "acme", enabled=False, sync_interval=60)
        s.commit()
        assert (tenant.id, tenant.enabled, tenant.sync_interval, tenant.options) == (t, False, 60, {"skip_app_groups": True})
        assert [x.name for x in list_tenants(s, enabled=False)] == ["acme"]
        s.commit()  # end the read snapshot before another session's run can be seen
        run = store.start_run(t)
        write_page(s, t, run, resources=[user("u1")])
        s.commit()
        assert remove_tenant(s, "acme") == 1
        assert list_tenants(s) == []
        with pytest.raises(TenantError, match="no tenant 'acme'"):
            get_tenant(s, "acme")


def test_local_key_file_is_private(tmp_path):
    path = tmp_path / "secret.key"
    key = local_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert local_key_file(path) == key
    load_keys(key)
    os.chmod(path, 0o644)
    with pytest.raises(SecretKeyError, match="readable by other users"):
        local_key_file(path)


def test_keygen_prints_a_usable_key():
    result = CliRunner().invoke(main, ["keygen"])
    assert result.exit_code == 0
    key = result.stdout.strip().splitlines()[0]
    load_keys(key).decrypt(load_keys(key).encrypt(b"x"))


def test_rotate_credentials_command(store, monkeypatch, secret_key):
    store.tenant("acme")
    new = generate_key()
    monkeypatch.setenv(ENV_VAR, f"{new},{secret_key}")
    result = CliRunner().invoke(main, ["db", "rotate-credentials", "--db", store.url])
    assert result.exit_code == 0, result.output
    assert "1 tenant" in result.output
    monkeypatch.setenv(ENV_VAR, new)
    with store.Session() as s:
        assert tenant_credentials(get_tenant(s, "acme"))["api_token"] == TEST_TOKEN
    monkeypatch.setenv(ENV_VAR, generate_key())
    result = CliRunner().invoke(main, ["db", "rotate-credentials", "--db", store.url])
    assert result.exit_code != 0 and "cannot be decrypted" in result.output and TEST_TOKEN not in result.output
