"""The connector and `oktasync check` with OAuth (private_key_jwt, Bearer and DPoP) against oktasim."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.connector import SIZES
from tests.support.expected import STANDARD, expected, observed
from worker.cli import main
from worker.connector import SyncOptions
from worker.connector.crawl import crawl
from worker.okta.auth import PrivateKeyJWTAuth
from worker.okta.client import OktaClient

CLIENT_ID = "0oaoktasynctest00001"
KID = "kid-test-1"
EVERYTHING = {"skip_app_groups": True, "sync_inactive_apps": True, "sync_secrets": True,
              "sync_custom_roles": True, "filter_email_domains": ("corp.example.com", "acme.io")}


@pytest.fixture(scope="module")
def key_pem(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    d = tmp_path_factory.mktemp("oauth")
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    (d / "public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "private.pem").write_text(private)
    return private, d


def start(oktasim, key_pem, *extra: str):
    return oktasim([*SIZES, "--oauth-client-id", CLIENT_ID, "--oauth-public-key", str(key_pem[1] / "public.pem"),
                    "--oauth-key-id", KID, *extra])


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
def test_oauth_sync_matches_org(oktasim, key_pem, dpop):
    sim = start(oktasim, key_pem, *(["--oauth-require-dpop"] if dpop else []))
    auth = PrivateKeyJWTAuth(CLIENT_ID, key_pem[0], KID, sync_secrets=True)
    client = OktaClient(sim.url, auth, max_retries=2)
    got, warnings, _ = observed(list(crawl(client, SyncOptions(**EVERYTHING))))
    token = auth.current_token(client.base_url)
    client.close()
    want = expected(sim.state(), **EVERYTHING)
    assert (got.resources, got.entitlements, got.grants) == (want.resources, want.entitlements, want.grants)
    assert warnings == []
    assert token.token_type == ("DPoP" if dpop else "Bearer")
    assert (auth.proofs_made > 0) is dpop


@pytest.mark.parametrize("granted_by", ["app", "request"])
def test_missing_scopes_skip_their_phases(oktasim, key_pem, granted_by):
    # The app is granted only the users and groups scopes ("app": Okta refuses a token request naming
    # the others, so the client asks again without them), or the sync asks only for those ("request").
    # Either way the apps, roles and API-token lists answer 403 insufficient_scope and are skipped.
    granted = ("okta.users.read", "okta.groups.read")
    if granted_by == "app":
        sim = start(oktasim, key_pem, "--oauth-scopes", " ".join(granted))
        auth = PrivateKeyJWTAuth(CLIENT_ID, key_pem[0], KID, sync_secrets=True)
    else:
        sim = start(oktasim, key_pem)
        auth = PrivateKeyJWTAuth(CLIENT_ID, key_pem[0], KID, scopes=granted)
    client = OktaClient(sim.url, auth, max_retries=2)
    got, warnings, _ = observed(list(crawl(client, SyncOptions(sync_custom_roles=True, sync_secrets=True))))
    client.close()
    assert set(auth.scopes) == set(granted)
    state = sim.state()
    full = expected(state, sync_custom_roles=True, sync_secrets=True)
    assert {r.split(":")[0] for r in got.resources} == {"user", "group", "role"}
    # Role types only seen in assignments cannot be known without okta.roles.read: the static ten remain.
    assert got.resources == {r for r in full.resources if r.split(":")[0] in ("user", "group")} | {
        f"role:{t}" for t in STANDARD}
    assert got.grants == {g for g in full.grants if g.startswith("group:")}
    joined = " | ".join(sorted(set(warnings)))
    for scope in ("okta.apps.read", "okta.roles.read", "okta.apiTokens.read"):
        assert scope in joined, joined
    assert "okta.users.read" not in joined and "okta.groups.read" not in joined


def test_check_with_oauth_app_missing_scopes(oktasim, key_pem):
    sim = start(oktasim, key_pem, "--oauth-scopes", "okta.users.read okta.groups.read okta.groups.manage")
    res = CliRunner().invoke(main, ["check", "--domain", sim.url, "--okta-client-id", CLIENT_ID,
                                    "--okta-private-key", f"@{key_pem[1] / 'private.pem'}",
                                    "--okta-private-key-id", KID, "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    got = {c["name"]: c["allowed"] for c in data["capabilities"]}
    assert got == {"review group membership": True, "provision group membership": True,
                   "review app assignment": False, "provision app assignment": None,
                   "review admin roles": False, "review service-app admin roles": False,
                   "create group": True, "modify group": True,
                   "delete group": True, "create account": False, "update user": False, "sync secrets": False,
                   "incremental sync (System Log)": False}
    assert any("okta.apps.read" in n for n in data["notes"])
    assert "PRIVATE KEY" not in res.output


def test_check_with_wrong_key_exits_2(oktasim, key_pem):
    sim = start(oktasim, key_pem)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    res = CliRunner().invoke(main, ["check", "--domain", sim.url, "--okta-client-id", CLIENT_ID,
                                    "--okta-private-key", other, "--okta-private-key-id", KID])
    assert res.exit_code == 2 and "credentials do not work" in res.stderr
