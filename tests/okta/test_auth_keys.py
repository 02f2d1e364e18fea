"""Key loading, credentials objects that keep their secrets, scopes, and the JWTs we sign."""

import base64
import hashlib
import pickle

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from worker.okta.auth import (
    InvalidCredentials,
    InvalidPrivateKey,
    PrivateKeyJWTAuth,
    Secret,
    SSWSAuth,
    load_private_key,
    scopes_for,
)

TOKEN_URL = "https://acme.okta.com/oauth2/v1/token"


def test_pkcs8_and_pkcs1_load_to_the_same_key(rsa_key, pkcs8_pem, pkcs1_pem):
    assert "BEGIN PRIVATE KEY" in pkcs8_pem and "BEGIN RSA PRIVATE KEY" in pkcs1_pem
    want = rsa_key.private_numbers()
    assert load_private_key(pkcs8_pem).private_numbers() == want
    assert load_private_key(pkcs1_pem).private_numbers() == want
    assert load_private_key(pkcs1_pem.encode()).private_numbers() == want


def test_literal_backslash_n_as_in_env_vars(rsa_key, pkcs8_pem, pkcs1_pem):
    for pem in (pkcs8_pem, pkcs1_pem):
        one_line = pem.strip().replace("\n", "\\n")
        assert "\n" not in one_line
        assert load_private_key(one_line).private_numbers() == rsa_key.private_numbers()
        assert load_private_key(f'"{one_line}"').private_numbers() == rsa_key.private_numbers()


def _pem(key, fmt=serialization.PrivateFormat.PKCS8, enc=None) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc or serialization.NoEncryption()).decode()


def test_ec_key_is_refused_clearly():
    key = ec.generate_private_key(ec.SECP256R1())
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        with pytest.raises(InvalidPrivateKey, match="EC .*needs an RSA key"):
            load_private_key(_pem(key, fmt))


def test_unreadable_keys_are_refused_without_echoing_them(pkcs8_pem):
    corrupted = pkcs8_pem.replace(pkcs8_pem.splitlines()[3], "A" * 64)
    cases = {
        "not-a-key-at-all": "not PEM",
        "": "empty",
        corrupted: "could not be read",
        pkcs8_pem[: len(pkcs8_pem) // 2] + "\n-----END PRIVATE KEY-----\n": "could not be read",
    }
    for text, says in cases.items():
        with pytest.raises(InvalidPrivateKey) as exc:
            load_private_key(text)
        assert says in str(exc.value)
        assert "MII" not in str(exc.value)  # no key material in the message


def test_encrypted_public_small_keys_refused(rsa_key):
    enc = _pem(rsa_key, enc=serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(InvalidPrivateKey, match="encrypted"):
        load_private_key(enc)
    public = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(InvalidPrivateKey, match="public key"):
        load_private_key(public)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidPrivateKey, match="1024 bits"):
        load_private_key(_pem(small))


def test_credentials_never_show_secrets(pkcs8_pem):
    token = "00abcdefSECRETtoken0123456789"
    ssws = SSWSAuth(token)
    oauth = PrivateKeyJWTAuth("0oaclient", pkcs8_pem, "kid-1")
    for obj in (ssws, oauth, Secret(token)):
        for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}"):
            assert token not in text and "PRIVATE KEY" not in text and "MII" not in text
    assert ssws.headers("https://acme.okta.com", "GET", "https://acme.okta.com/api/v1/users") == {
        "Authorization": f"SSWS {token}"}
    for obj in (ssws, oauth, Secret(token)):
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def test_bad_credentials_named(pkcs8_pem):
    with pytest.raises(InvalidCredentials, match="API token is empty"):
        SSWSAuth("  ")
    with pytest.raises(InvalidCredentials, match="whitespace"):
        SSWSAuth("abc\r\nX-Injected: 1")
    with pytest.raises(InvalidCredentials, match="client id is empty"):
        PrivateKeyJWTAuth("", pkcs8_pem, "kid")
    with pytest.raises(InvalidCredentials, match="kid"):
        PrivateKeyJWTAuth("0oa1", pkcs8_pem, "")
    with pytest.raises(InvalidPrivateKey):
        PrivateKeyJWTAuth("0oa1", "nope", "kid")


def test_scopes_follow_the_use():
    read = ("okta.users.read", "okta.groups.read", "okta.apps.read", "okta.roles.read")
    assert scopes_for("sync") == read + ("okta.logs.read",)  # the System Log: incremental sync
    assert scopes_for("sync", sync_secrets=True) == read + ("okta.logs.read", "okta.apiTokens.read")
    prov = scopes_for("provisioning")
    assert set(read) <= set(prov)
    assert {"okta.users.manage", "okta.groups.manage", "okta.apps.manage", "okta.roles.manage"} <= set(prov)
    assert "okta.apiTokens.read" not in prov
    with pytest.raises(ValueError, match="unknown use 'export'"):
        scopes_for("export")


def test_client_assertion_claims(rsa_key, pkcs1_pem):
    auth = PrivateKeyJWTAuth("0oaclient", pkcs1_pem, "kid-1")
    a1, a2 = auth.client_assertion(TOKEN_URL), auth.client_assertion(TOKEN_URL)
    header = jwt.get_unverified_header(a1)
    assert header["kid"] == "kid-1" and header["alg"] == "RS256"
    claims = jwt.decode(a1, rsa_key.public_key(), algorithms=["RS256"], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == "0oaclient"
    assert 0 < claims["exp"] - claims["iat"] <= 300
    other = jwt.decode(a2, rsa_key.public_key(), algorithms=["RS256"], audience=TOKEN_URL)
    assert claims["jti"] != other["jti"]


def test_dpop_proof_claims(pkcs8_pem):
    auth = PrivateKeyJWTAuth("0oaclient", pkcs8_pem, "kid-1")
    url = "https://acme.okta.com/api/v1/users?limit=200&after=x"
    proof = auth.dpop_proof("get", url, access_token="tok.en.value")
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "RS256"
    assert set(header["jwk"]) == {"kty", "n", "e"}  # public members only
    key = jwt.PyJWK(header["jwk"], "RS256").key
    claims = jwt.decode(proof, key, algorithms=["RS256"])
    assert claims["htm"] == "GET"
    assert claims["htu"] == "https://acme.okta.com/api/v1/users"
    want_ath = base64.urlsafe_b64encode(hashlib.sha256(b"tok.en.value").digest()).rstrip(b"=").decode()
    assert claims["ath"] == want_ath
    second = jwt.decode(auth.dpop_proof("GET", url), key, algorithms=["RS256"])
    assert second["jti"] != claims["jti"] and "ath" not in second
    # The proof key is not the client's key.
    client_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(load_private_key(pkcs8_pem).public_key(), as_dict=True)
    assert header["jwk"]["n"] != client_jwk["n"]
