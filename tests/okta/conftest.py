"""Fixtures for the Okta client tests: RSA keys (the local HTTP server fixture is shared, in
tests/support/fixtures.py)."""

from __future__ import annotations

import pytest

from tests.support import keys
from worker.okta.auth import clear_token_cache


@pytest.fixture(scope="session")
def rsa_key():
    return keys.shared_rsa_key()


@pytest.fixture(scope="session")
def pkcs8_pem(rsa_key) -> str:
    return keys.pkcs8_pem(rsa_key)


@pytest.fixture(scope="session")
def pkcs1_pem(rsa_key) -> str:
    return keys.pkcs1_pem(rsa_key)


@pytest.fixture(scope="session")
def public_pem_file(rsa_key, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(keys.public_pem(rsa_key))
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    # Tokens are cached per process; each test starts without any.
    clear_token_cache()
    yield
    clear_token_cache()
