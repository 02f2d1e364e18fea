"""Fixtures for the operations tests: an RSA key pair on disk (helpers in tests/support/ops.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.keys import new_rsa_key, pkcs8_pem, public_pem


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory) -> tuple[str, Path, Path]:
    """(private PEM text, private key file, public key file)."""
    key = new_rsa_key()
    d = tmp_path_factory.mktemp("keys")
    private = pkcs8_pem(key)
    (d / "private.pem").write_text(private)
    (d / "public.pem").write_bytes(public_pem(key))
    return private, d / "private.pem", d / "public.pem"
