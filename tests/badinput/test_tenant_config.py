"""Malformed tenant configuration through `oktasync tenant add` (real CLI process, SQLite store):
a clear error naming what is wrong, exit code != 0, nothing stored, no secret echoed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.sim import SIM_TOKEN
from worker.store.secrets import generate_key

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("oktasync"))


@pytest.fixture
def cli(tmp_path):
    import os

    env = {**os.environ, "OKTASYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "OKTASYNC_SECRET_KEY": generate_key()}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([EXE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    return run


BAD_DOMAINS = [
    ("https://acme.okta.com/api/v1", "has a path"),
    ("https://admin:hunter2-secret@acme.okta.com", "user information"),
    ("169.254.169.254", "link-local"),
    ("https://169.254.169.254", "link-local"),
    ("http://[fe80::1]", "link-local"),
    ("http://acme.okta.com", "plain http"),
    ("http://10.0.0.5:8080", "plain http"),
    ("ftp://acme.okta.com", "scheme"),
    ("acme.okta.com?x=1", "query"),
    ("acme-admin.okta.com", "Admin Console"),
    ("bad_host!.com", "invalid host name"),
    ("", "empty"),
]


def test_bad_domains_are_refused_with_a_reason(cli):
    # One process per case would cost ~1 s each: run them all, then check each answer.
    for domain, reason in BAD_DOMAINS:
        got = cli("tenant", "add", "t1", "--domain", domain, "--api-token", SIM_TOKEN, "--paused")
        assert got.returncode != 0, (domain, got.stdout)
        assert reason in got.stderr, (domain, got.stderr)
        assert "Traceback" not in got.stderr
        assert "hunter2-secret" not in got.stderr + got.stdout
        assert SIM_TOKEN not in got.stderr + got.stdout
    assert json.loads(cli("tenant", "list", "--json").stdout) == []


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_bad_private_keys_are_refused(cli, tmp_path):
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    rsa_pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    (tmp_path / "ec.pem").write_text(ec_pem)
    (tmp_path / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all!!\n-----END PRIVATE KEY-----\n")
    unreadable = tmp_path / "unreadable.pem"
    unreadable.write_text(rsa_pem)
    unreadable.chmod(0)
    cases = [
        ("@" + str(tmp_path / "ec.pem"), "EC (elliptic-curve) key"),
        ("@" + str(tmp_path / "garbage.pem"), "private key"),
        ("@" + str(tmp_path / "missing.pem"), "cannot read the private key file"),
        ("just some text", "private key"),
    ]
    import os

    if os.geteuid() != 0:  # root reads mode-0 files
        cases.append(("@" + str(unreadable), "cannot read the private key file"))
    for value, reason in cases:
        got = cli("tenant", "add", "t2", "--domain", "acme.okta.com", "--okta-client-id", "0oa1",
                  "--okta-private-key", value, "--okta-private-key-id", "kid1", "--paused")
        assert got.returncode != 0, (value, got.stdout)
        assert reason in got.stderr, (value, got.stderr)
        assert "Traceback" not in got.stderr
        assert "MII" not in got.stderr and "not base64 at all" not in got.stderr  # no key material echoed
    # Incomplete OAuth credentials name the missing flag.
    got = cli("tenant", "add", "t2", "--domain", "acme.okta.com", "--okta-client-id", "0oa1", "--paused")
    assert got.returncode == 2 and "--okta-private-key" in got.stderr
    assert "t2" not in cli("tenant", "list").stdout


def test_wrong_kid_fails_the_sync_with_a_clear_message(oktasim, tmp_path):
    """The kid cannot be checked when the tenant is added; the first sync fails and says which kid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "private.pem").write_text(_pem(key))
    (tmp_path / "public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    sim = oktasim(["--users", "10", "--oauth-client-id", "0oachaos", "--oauth-public-key",
                   str(tmp_path / "public.pem"), "--oauth-key-id", "right-kid"])
    got = subprocess.run([EXE, "--domain", sim.url, "--okta-client-id", "0oachaos", "--okta-private-key",
                          "@" + str(tmp_path / "private.pem"), "--okta-private-key-id", "wrong-kid",
                          "--file", str(tmp_path / "s.db")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert got.returncode == 1, (got.stdout, got.stderr[-2000:])
    assert "wrong-kid" in got.stderr and "kid" in got.stderr, got.stderr[-2000:]
    assert "Traceback" not in got.stderr
    assert "BEGIN" not in got.stderr + got.stdout


def test_missing_or_unreachable_store_says_what_to_do(tmp_path):
    """Tenant, sync and runs commands on a store that is absent, empty or down: a message, no traceback."""
    import os

    def run(url: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "OKTASYNC_DATABASE_URL": url, "OKTASYNC_SECRET_KEY": generate_key()}
        return subprocess.run([EXE, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    (tmp_path / "empty.db").touch()
    stores = [(f"sqlite:///{tmp_path / 'absent.db'}", "no grant store at"),
              (f"sqlite:///{tmp_path / 'empty.db'}", "has no oktasync tables"),
              ("postgresql://postgres:pw-hunter2@127.0.0.1:1/none", "cannot open the database")]
    for url, reason in stores:
        for args in (("tenant", "list"), ("tenant", "show", "t1"), ("tenant", "pause", "t1"), ("sync", "t1"),
                     ("runs", "t1", "--json")):
            got = run(url, *args)
            assert got.returncode == 1, (url, args, got.stdout, got.stderr[-2000:])
            assert reason in got.stderr and "Traceback" not in got.stderr, (url, args, got.stderr[-2000:])
            assert "pw-hunter2" not in got.stderr + got.stdout
    assert not (tmp_path / "absent.db").exists()  # looking did not create an empty store
    down = run(stores[2][0], "tenant", "add", "t1", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN)
    assert down.returncode == 1 and "cannot open the database" in down.stderr and "Traceback" not in down.stderr
    assert SIM_TOKEN not in down.stderr + down.stdout


def test_conflicting_credentials_name_the_environment_variable(tmp_path):
    """A token left in the environment plus OAuth flags: the error says where the token came from."""
    import os

    env = {**os.environ, "OKTASYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "OKTASYNC_SECRET_KEY": generate_key(), "OKTASYNC_API_TOKEN": SIM_TOKEN}
    oauth = ["--okta-client-id", "0oa1", "--okta-private-key", "@key.pem", "--okta-private-key-id", "kid1"]
    for args in (["tenant", "add", "t1", "--domain", "acme.okta.com", *oauth], ["--domain", "acme.okta.com", *oauth]):
        got = subprocess.run([EXE, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert got.returncode == 2, (args, got.stdout, got.stderr)
        assert "not both" in got.stderr and "$OKTASYNC_API_TOKEN" in got.stderr, got.stderr
        assert SIM_TOKEN not in got.stderr + got.stdout


def test_rename_onto_an_existing_tenant_is_refused(cli):
    for name in ("t1", "t2"):
        assert cli("tenant", "add", name, "--domain", "acme.okta.com", "--api-token", SIM_TOKEN, "--paused").returncode == 0
    got = cli("tenant", "update", "t1", "--rename", "t2")
    assert got.returncode == 1 and "'t2' already exists" in got.stderr and "Traceback" not in got.stderr, got.stderr
    assert sorted(t["name"] for t in json.loads(cli("tenant", "list", "--json").stdout)) == ["t1", "t2"]


def test_bad_email_domain_filter_names_the_flag(cli):
    got = cli("tenant", "add", "t1", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN,
              "--filter-email-domains", "acme.com,not a domain")
    assert got.returncode == 2 and "--filter-email-domains" in got.stderr and "'not a domain'" in got.stderr, got.stderr
