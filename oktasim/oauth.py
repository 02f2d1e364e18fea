"""The org authorization server's token endpoint (/oauth2/v1/token) for one OAuth service app:
client_credentials with a private_key_jwt client assertion, optionally DPoP-bound tokens
(okta-api.md §2.2, §2.3); the DPoP proof checks are in oktasim.dpop, shared with the resource side.

Error bodies are Okta's OAuth shape {"error", "error_description"}. Descriptions quote Okta where the
reference gives the text (missing proof, use_dpop_nonce, already used, htu, ath, five minutes);
the others are worded in the same style. Secrets (assertions, proofs, tokens) never go into
messages or reprs.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oktasim.auth import Authenticator
from oktasim.dpop import (
    ALGS,
    SKEW,
    DPoPError,
    DPoPVerifier,
    JtiCache,
    access_token_hash,
    header_values,
    normalize_htu,
)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3600          # fixed for client credentials (§2.2)
ASSERTION_MAX_AHEAD = 3600     # exp at most one hour in the future (§2.2)
NONCE_ROTATE = 24 * 3600       # Okta renews the DPoP nonce daily; the previous one keeps working

_NO_STORE = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache", "Expires": "0"}


@dataclass
class OAuthApp:
    client_id: str
    public_key_pem: bytes = field(repr=False)
    key_id: str
    scopes: frozenset[str]
    require_dpop: bool


def load_public_key(pem: bytes):
    """The app's registered public key; a clear ValueError for anything else (never echoing the file)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        if b"PRIVATE KEY" in pem:
            raise ValueError("--oauth-public-key must be a PEM public key, got a private key") from None
        raise ValueError("--oauth-public-key is not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')") \
            from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"--oauth-public-key: RSA keys must be at least 2048 bits, got {key.key_size}")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("--oauth-public-key must be an RSA or EC public key")
    return key


# -- the token endpoint -----------------------------------------------------------------------------

class _OAuthFailure(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


def _client_error(description: str) -> _OAuthFailure:
    return _OAuthFailure(401, "invalid_client", description)


class TokenEndpoint:
    """POST /oauth2/v1/token for one service app. `handle` never raises: it returns the status,
    the headers to add (Cache-Control, DPoP-Nonce) and the JSON body."""

    def __init__(self, app: OAuthApp | None, authenticator: Authenticator,
                 clock: Callable[[], float] | None = None):
        self.app = app
        self.authenticator = authenticator
        self._clock = clock or authenticator.clock
        self._key = load_public_key(app.public_key_pem) if app else None
        self._assertion_jtis = JtiCache()
        self._dpop = DPoPVerifier(self._clock)
        self._nonces: tuple[str, ...] = ()
        self._nonce_at = float("-inf")

    def principal_id(self, form: dict[str, str]) -> str:
        """The rate-limit principal of a token request: the app's client id when the request names it
        (form client_id, or the assertion's iss/sub, unverified), else "anonymous"."""
        app = self.app
        if app is None:
            return "anonymous"
        named = form.get("client_id")
        if named is None and form.get("client_assertion"):
            try:
                claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
                named = claims.get("iss") or claims.get("sub")
            except jwt.PyJWTError:
                named = None
        return app.client_id if named == app.client_id else "anonymous"

    def handle(self, url: str, headers, form: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        try:
            return self._handle(url, headers, form)
        except _OAuthFailure as f:
            return f.status, {**_NO_STORE, **f.headers}, {"error": f.error, "error_description": f.description}

    # The order follows what the recordings imply: the client assertion is checked (and its jti
    # spent) before the DPoP proof, so a use_dpop_nonce answer needs a fresh assertion (§2.3).
    def _handle(self, url: str, headers, form: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        grant = form.get("grant_type")
        if not grant:
            raise _OAuthFailure(400, "invalid_request", "The token request must specify a 'grant_type'.")
        if grant != "client_credentials":
            raise _OAuthFailure(400, "unsupported_grant_type", "The grant type in the request isn't supported.")
        app = self._check_client(url, headers, form)
        token_url = normalize_htu(url)
        now = self._clock()
        jkt = None
        proofs = header_values(headers, "DPoP")
        if app.require_dpop or proofs:
            if not proofs:
                raise _OAuthFailure(400, "invalid_dpop_proof", "The DPoP proof JWT header is missing.")
            if len(proofs) > 1:
                raise _OAuthFailure(400, "invalid_dpop_proof", "Multiple DPoP proof JWT headers were provided.")
            try:
                jkt = self._dpop.verify(proofs[0], "POST", token_url, nonces=self._current_nonces(now))
            except DPoPError as e:
                if e.use_nonce:
                    raise _OAuthFailure(400, "use_dpop_nonce", e.description,
                                        {"DPoP-Nonce": self._nonces[0]}) from None
                raise _OAuthFailure(400, "invalid_dpop_proof", e.description) from None
        scopes = self._check_scopes(app, form.get("scope"))
        token = self.authenticator.issue_access_token(
            client_id=app.client_id, scopes=scopes, jkt=jkt, origin=_origin(url), lifetime=TOKEN_LIFETIME)
        out_headers = dict(_NO_STORE)
        if jkt:
            out_headers["DPoP-Nonce"] = self._nonces[0]
        return 200, out_headers, {
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "access_token": token,
            "scope": " ".join(sorted(scopes)),
        }

    def _current_nonces(self, now: float) -> tuple[str, ...]:
        if now - self._nonce_at >= NONCE_ROTATE:
            self._nonces = (secrets.token_urlsafe(24), *self._nonces[:1])
            self._nonce_at = now
        return self._nonces

    def _check_client(self, url: str, headers, form: dict[str, str]) -> OAuthApp:
        assertion = form.get("client_assertion")
        atype = form.get("client_assertion_type")
        if not assertion and not atype:
            if form.get("client_secret") or (header_values(headers, "Authorization") or [""])[0][:6] == "Basic ":
                raise _client_error("Client Credentials requests to the Org Authorization Server must use the "
                                    "private_key_jwt token_endpoint_auth_method.")
            raise _client_error("No client credentials found.")
        if atype != JWT_BEARER:
            raise _OAuthFailure(400, "invalid_request", "The client_assertion_type is invalid.")
        if not assertion:
            raise _client_error("No client credentials found.")
        app = self.app
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _client_error("The client_assertion token is malformed.") from None
        if app is None or (form.get("client_id") not in (None, app.client_id)) or \
                app.client_id not in (claims.get("iss"), claims.get("sub")):
            raise _client_error("Invalid value for 'client_id' parameter.")
        if header.get("alg") not in ALGS:
            raise _client_error("The client_assertion token has an invalid 'alg'.")
        if "kid" in header and header["kid"] != app.key_id:
            raise _client_error("The client_assertion token has an invalid 'kid'.")
        if claims.get("iss") != app.client_id:
            raise _client_error("The 'iss' claim in the client_assertion token is invalid.")
        if claims.get("sub") != app.client_id:
            raise _client_error("The 'sub' claim in the client_assertion token is invalid.")
        try:
            jwt.decode(assertion, self._key, algorithms=[header["alg"]],
                       options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                                "verify_nbf": False})
        except jwt.PyJWTError:
            raise _client_error("The client_assertion signature is invalid.") from None
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        want = normalize_htu(url)
        if not any(isinstance(a, str) and normalize_htu(a) == want and "?" not in a for a in auds):
            raise _client_error("The audience claim in the client_assertion token is invalid; it must be "
                                "the token endpoint URL.")
        now = self._clock()
        exp = claims.get("exp")
        if exp is None:
            raise _client_error("The client_assertion token must have an expiration claim (exp).")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _client_error("The client_assertion token has an invalid expiration claim (exp).")
        if exp < now - SKEW:
            raise _client_error("The client_assertion token is expired.")
        if exp > now + ASSERTION_MAX_AHEAD + SKEW:
            raise _client_error("The client_assertion token has an expiration too far in the future "
                                "(at most one hour).")
        iat = claims.get("iat")
        if iat is not None and (not isinstance(iat, int | float) or iat > now + SKEW):
            raise _client_error("The client_assertion token was issued in the future.")
        jti = claims.get("jti")
        if jti is not None:
            if not self._assertion_jtis.use(str(jti), float(exp) + SKEW, now):
                raise _client_error("The client_assertion token has already been used.")
        return app

    @staticmethod
    def _check_scopes(app: OAuthApp, scope: str | None) -> frozenset[str]:
        requested = [s for s in (scope or "").split(" ") if s]
        if not requested:
            raise _OAuthFailure(400, "invalid_scope", "No scopes were requested.")
        if "openid" in requested:
            raise _OAuthFailure(400, "invalid_scope", "Cannot request 'openid' scopes using client credentials.")
        refused = [s for s in requested if s not in app.scopes]
        if refused:
            raise _OAuthFailure(400, "invalid_scope", "The following scopes are not allowed for this request: "
                                + ", ".join(refused))
        return frozenset(requested)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- client side (tests, demos, operators trying the simulator by hand) ------------------------------

def client_assertion(private_key, client_id: str, token_url: str, key_id: str | None = None, *,
                     lifetime: int = 300, alg: str = "RS256", now: float | None = None, jti: str | None = None,
                     **overrides) -> str:
    """A private_key_jwt client assertion as the SDKs build it (§2.2); `overrides` replace claims
    (e.g. aud=..., exp=...; a value of None removes the claim)."""
    now = time.time() if now is None else now
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": int(now),
              "exp": int(now) + lifetime, "jti": jti or secrets.token_urlsafe(16)}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, private_key, algorithm=alg, headers=headers)


def dpop_proof(private_key, method: str, url: str, *, nonce: str | None = None, access_token: str | None = None,
               now: float | None = None, jti: str | None = None, alg: str = "RS256", typ: str = "dpop+jwt",
               **overrides) -> str:
    """A DPoP proof (§2.3) signed with `private_key`, its public JWK embedded in the header."""
    now = time.time() if now is None else now
    public_jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
    claims = {"htm": method.upper(), "htu": url.split("?", 1)[0].split("#", 1)[0], "iat": int(now),
              "jti": jti or secrets.token_urlsafe(16)}
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        claims["ath"] = access_token_hash(access_token)
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, private_key, algorithm=alg, headers={"typ": typ, "jwk": public_jwk})
