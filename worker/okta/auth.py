"""Credentials for Okta: SSWS API tokens, and OAuth 2.0 client credentials with private_key_jwt
(+ DPoP when the service app requires it or Okta issues DPoP-bound tokens).

The client (worker/okta/client.py) drives an auth object through three calls per HTTP attempt:
`prepare(base_url, send)` makes sure an access token is cached (fetching one through `send`, which
goes through the rate limiter), `headers(base_url, method, url)` builds this attempt's headers (a new
DPoP proof every time), and `on_response(base_url, status, headers)` says whether an auth problem is
worth exactly one more attempt (DPoP nonce, expired token, stale proof).

Access tokens are cached per process (not per auth object), keyed by token URL, client id, key and
scopes, so every task in a worker process shares one token; a lock per key makes a single refresh.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import jwt
import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from worker.okta.errors import (
    OktaAuthenticationError,
    OktaError,
    OktaTransientError,
    error_from_response,
    parse_www_authenticate,
)

__all__ = [
    "READ_SCOPES", "MANAGE_SCOPES", "scopes_for", "Secret", "InvalidCredentials", "InvalidPrivateKey",
    "load_private_key", "Auth", "SSWSAuth", "PrivateKeyJWTAuth", "TokenSend", "token_url_for",
    "clear_token_cache",
]

READ_SCOPES = ("okta.users.read", "okta.groups.read", "okta.apps.read", "okta.roles.read")
LOGS_READ = "okta.logs.read"
MANAGE_SCOPES = ("okta.users.manage", "okta.groups.manage", "okta.apps.manage", "okta.roles.manage")
USES = ("sync", "provisioning")

ASSERTION_LIFETIME = 300  # seconds; Okta allows up to one hour, short limits the value of a leak
TOKEN_REFRESH_MARGIN = 60  # refresh this long before expiry (capped at half the lifetime)
NONCE_ROUNDS = 2  # use_dpop_nonce answers handled per token request, as Okta's SDKs do


def scopes_for(use: str = "sync", *, sync_secrets: bool = False) -> tuple[str, ...]:
    """The OAuth scopes a use needs: reads for sync, reads + manage for provisioning;
    okta.apiTokens.read only when secrets (API tokens) are synced; okta.logs.read for sync (the
    System Log drives incremental sync; an app not granted it is asked again without it, and its
    runs are full ones with a warning)."""
    if use == "sync":
        scopes = READ_SCOPES + (LOGS_READ,)
    elif use == "provisioning":
        scopes = READ_SCOPES + MANAGE_SCOPES
    else:
        raise ValueError(f"unknown use {use!r}; expected one of {', '.join(USES)}")
    if sync_secrets:
        scopes += ("okta.apiTokens.read",)
    return scopes


def token_url_for(base_url: str) -> str:
    return base_url.rstrip("/") + "/oauth2/v1/token"


class Secret:
    """A string that never shows itself in repr/str/format and refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):
        raise TypeError("secrets are not picklable; pass a reference to stored credentials instead")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class InvalidCredentials(ValueError):
    """Credentials that cannot be used as given (empty token, bad client id...)."""


class InvalidPrivateKey(InvalidCredentials):
    """The private key cannot be read or is not an RSA key; the message says which."""


def load_private_key(pem: str | bytes | Secret) -> rsa.RSAPrivateKey:
    """Read an RSA private key: PKCS#1 (BEGIN RSA PRIVATE KEY) or PKCS#8 (BEGIN PRIVATE KEY) PEM;
    literal `\\n` sequences (keys pasted into env vars) are turned into newlines. Errors never
    include the key material."""
    if isinstance(pem, Secret):
        pem = pem.reveal()
    if isinstance(pem, bytes):
        try:
            pem = pem.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPrivateKey("the Okta private key is not text: give a PEM file (not DER)") from None
    if not isinstance(pem, str):
        raise InvalidPrivateKey(f"the Okta private key must be PEM text, got {type(pem).__name__}")
    text = pem.strip().strip('"').strip("'").replace("\\r\\n", "\n").replace("\\n", "\n").replace("\r\n", "\n")
    if not text:
        raise InvalidPrivateKey("the Okta private key is empty")
    if "-----BEGIN" not in text:
        raise InvalidPrivateKey(
            "the Okta private key is not PEM: expected a '-----BEGIN PRIVATE KEY-----' "
            "(PKCS#8) or '-----BEGIN RSA PRIVATE KEY-----' (PKCS#1) block")
    if "ENCRYPTED" in text or "Proc-Type: 4,ENCRYPTED" in text:
        raise InvalidPrivateKey("the Okta private key is encrypted with a passphrase; export it unencrypted")
    if "BEGIN PUBLIC KEY" in text or "BEGIN RSA PUBLIC KEY" in text or "BEGIN CERTIFICATE" in text:
        if "PRIVATE KEY" not in text:
            raise InvalidPrivateKey("the Okta private key is a public key or certificate; give the private key")
    if "BEGIN EC PRIVATE KEY" in text:
        raise InvalidPrivateKey(
            "the Okta private key is an EC (elliptic-curve) key; oktasync signs with RS256 and needs an RSA key")
    try:
        key = serialization.load_pem_private_key(text.encode("ascii", "strict"), password=None)
    except TypeError:
        raise InvalidPrivateKey("the Okta private key is encrypted with a passphrase; export it unencrypted") from None
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise InvalidPrivateKey(
            "the Okta private key could not be read: not a valid PKCS#1 or PKCS#8 PEM private key "
            "(truncated, corrupted, or wrong line breaks?)") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidPrivateKey(
            "the Okta private key is an EC (elliptic-curve) key; oktasync signs with RS256 and needs an RSA key")
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise InvalidPrivateKey("the Okta private key is an EdDSA key; Okta needs an RSA key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidPrivateKey(f"the Okta private key is a {type(key).__name__}, not an RSA key")
    if key.key_size < 2048:
        raise InvalidPrivateKey(f"the Okta private key has {key.key_size} bits; Okta requires RSA keys of at least 2048 bits")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}


def _htu(url: str) -> str:
    # RFC 9449: the URI without query and fragment.
    return url.split("#", 1)[0].split("?", 1)[0]


# -- what an auth object needs from the client -------------------------------------------------


class TokenSend(Protocol):
    """POST a form to the token endpoint through the limiter; return (status, headers, body)."""

    def __call__(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]
                 ) -> tuple[int, Mapping[str, str], bytes]: ...


class Auth(Protocol):
    kind: str

    def prepare(self, base_url: str, send: TokenSend) -> None: ...

    def headers(self, base_url: str, method: str, url: str) -> dict[str, str]: ...

    def on_response(self, base_url: str, status: int, headers: Mapping[str, str]) -> bool: ...


class SSWSAuth:
    """`Authorization: SSWS <token>`."""

    kind = "ssws"

    def __init__(self, token: str | Secret):
        raw = token.reveal() if isinstance(token, Secret) else token
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidCredentials("the Okta API token is empty")
        raw = raw.strip()
        if raw.lower().startswith("ssws "):
            raw = raw[5:].strip()
        if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in raw):
            raise InvalidCredentials("the Okta API token contains whitespace or non-printable characters")
        self._token = Secret(raw)

    def prepare(self, base_url: str, send: TokenSend) -> None:
        return None

    def headers(self, base_url: str, method: str, url: str) -> dict[str, str]:
        return {"Authorization": f"SSWS {self._token.reveal()}"}

    def on_response(self, base_url: str, status: int, headers: Mapping[str, str]) -> bool:
        return False

    def __repr__(self) -> str:
        return "SSWSAuth(token=<redacted>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("credentials are not picklable")


# -- process-wide OAuth state -------------------------------------------------------------------


@dataclass
class _Token:
    value: str
    token_type: str  # "Bearer" or "DPoP"
    expires_at: float  # time.time() based
    scope: str


class _ProcessState:
    """Tokens, DPoP key and nonces of this process; locks are re-created after fork."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key_locks: dict[tuple, threading.Lock] = {}
        self.tokens: dict[tuple, _Token] = {}
        self.dpop_required: dict[tuple, bool] = {}
        self.nonces: dict[str, str] = {}  # origin or token URL -> latest DPoP-Nonce
        self.dpop_key: rsa.RSAPrivateKey | None = None
        self.dpop_jwk: dict[str, str] | None = None

    def key_lock(self, key: tuple) -> threading.Lock:
        with self.lock:
            lock = self.key_locks.get(key)
            if lock is None:
                lock = self.key_locks[key] = threading.Lock()
            return lock

    def proof_key(self) -> tuple[rsa.RSAPrivateKey, dict[str, str]]:
        # One ephemeral RSA key per process for DPoP proofs (separate from the client's key, as Okta
        # advises); tokens it bound stay valid for the process' lifetime.
        with self.lock:
            if self.dpop_key is None:
                self.dpop_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self.dpop_jwk = public_jwk(self.dpop_key)
            assert self.dpop_jwk is not None
            return self.dpop_key, self.dpop_jwk

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.key_locks = {}


_STATE = _ProcessState()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_STATE.after_fork)


def clear_token_cache() -> None:
    """Forget every cached access token, DPoP nonce and DPoP key (tests, credential rotation)."""
    with _STATE.lock:
        _STATE.tokens.clear()
        _STATE.dpop_required.clear()
        _STATE.nonces.clear()
        _STATE.dpop_key = None
        _STATE.dpop_jwk = None


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _clock_offset(headers: Mapping[str, str]) -> float | None:
    date = headers.get("Date") or headers.get("date")
    if not date:
        return None
    try:
        return time.time() - parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class PrivateKeyJWTAuth:
    """OAuth 2.0 client credentials with a private_key_jwt client assertion (RS256, header kid).

    `dpop`: None (default) uses DPoP when Okta asks for it or issues a DPoP token; True always sends
    a proof; False never does.
    """

    kind = "oauth"

    def __init__(
        self,
        client_id: str,
        private_key: str | bytes | Secret,
        key_id: str,
        *,
        use: str = "sync",
        sync_secrets: bool = False,
        scopes: Sequence[str] | None = None,
        dpop: bool | None = None,
    ):
        if not isinstance(client_id, str) or not client_id.strip():
            raise InvalidCredentials("the Okta OAuth client id is empty")
        if any(c.isspace() for c in client_id.strip()):
            raise InvalidCredentials("the Okta OAuth client id contains whitespace")
        if not isinstance(key_id, str) or not key_id.strip():
            raise InvalidCredentials("the Okta private key id (kid) is empty")
        self.client_id = client_id.strip()
        self.key_id = key_id.strip()
        self._key = load_private_key(private_key)
        self.scopes: tuple[str, ...] = tuple(scopes) if scopes is not None else scopes_for(use, sync_secrets=sync_secrets)
        if not self.scopes:
            raise InvalidCredentials("no OAuth scopes to request")
        self.dpop = dpop
        self.refused_scopes: frozenset[str] = frozenset()  # scopes Okta said the app was not granted
        pub = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._fingerprint = hashlib.sha256(pub).hexdigest()[:16]
        self.assertions_made = 0  # counters, for tests and diagnostics
        self.proofs_made = 0
        self.token_requests = 0

    def __repr__(self) -> str:
        return (f"PrivateKeyJWTAuth(client_id={self.client_id!r}, key_id={self.key_id!r}, "
                f"private_key=<redacted>, scopes={' '.join(self.scopes)!r})")

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("credentials are not picklable")

    # -- keys into the process state --

    def _cache_key(self, token_url: str) -> tuple:
        return (token_url, self.client_id, self.key_id, self._fingerprint, self.scopes)

    def _uses_dpop_for_token(self, token_url: str) -> bool:
        if self.dpop is not None:
            return self.dpop
        return _STATE.dpop_required.get((token_url, self.client_id), False)

    def current_token(self, base_url: str) -> _Token | None:
        return _STATE.tokens.get(self._cache_key(token_url_for(base_url)))

    def invalidate(self, base_url: str) -> None:
        _STATE.tokens.pop(self._cache_key(token_url_for(base_url)), None)

    # -- JWTs --

    def client_assertion(self, token_url: str) -> str:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": token_url,
                  "iat": now, "exp": now + ASSERTION_LIFETIME, "jti": uuid.uuid4().hex}
        self.assertions_made += 1
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"})

    def dpop_proof(self, method: str, url: str, *, nonce: str | None = None,
                   access_token: str | None = None) -> str:
        key, jwk = _STATE.proof_key()
        claims: dict[str, Any] = {"htm": method.upper(), "htu": _htu(url), "iat": int(time.time()),
                                  "jti": uuid.uuid4().hex}
        if nonce:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        self.proofs_made += 1
        return jwt.encode(claims, key, algorithm="RS256", headers={"typ": "dpop+jwt", "jwk": jwk})

    # -- the Auth protocol --

    def prepare(self, base_url: str, send: TokenSend) -> None:
        token_url = token_url_for(base_url)
        key = self._cache_key(token_url)
        tok = _STATE.tokens.get(key)
        if tok is not None and tok.expires_at > time.time():
            return
        with _STATE.key_lock(key):  # one refresh at a time; the others reuse its result
            tok = _STATE.tokens.get(key)
            if tok is not None and tok.expires_at > time.time():
                return
            tok = self._fetch_token(token_url, send)
            _STATE.tokens[self._cache_key(token_url)] = tok  # scopes may have shrunk: the key with them

    def headers(self, base_url: str, method: str, url: str) -> dict[str, str]:
        tok = self.current_token(base_url)
        if tok is None:
            # Dropped by another thread (invalid_token) between prepare() and now: try again.
            raise OktaTransientError("the access token was dropped before use; fetching a new one")
        if tok.token_type.lower() == "dpop":
            nonce = _STATE.nonces.get(_origin(url))
            return {"Authorization": f"DPoP {tok.value}",
                    "DPoP": self.dpop_proof(method, url, nonce=nonce, access_token=tok.value),
                    "x-okta-user-agent-extended": "isDPoP:true"}
        return {"Authorization": f"Bearer {tok.value}"}

    def on_response(self, base_url: str, status: int, headers: Mapping[str, str]) -> bool:
        """Learn from a resource response; True if one more attempt can fix an auth problem."""
        nonce = headers.get("DPoP-Nonce") or headers.get("dpop-nonce")
        if nonce:
            _STATE.nonces[_origin(base_url)] = nonce
        if status not in (400, 401):
            return False
        _, params = parse_www_authenticate(headers.get("WWW-Authenticate") or headers.get("www-authenticate"))
        error = params.get("error")
        if error == "use_dpop_nonce" and nonce:
            return True
        if error == "invalid_token" and status == 401:
            self.invalidate(base_url)  # expired or revoked early: fetch a new one
            return True
        if error == "invalid_dpop_proof":
            return True  # a fresh proof (new iat/jti) may pass; the client allows this once
        return False

    # -- the token request --

    def _fetch_token(self, token_url: str, send: TokenSend) -> _Token:
        use_dpop = self._uses_dpop_for_token(token_url)
        switched_to_dpop = False
        nonce_rounds = 0
        while True:
            form = {
                "grant_type": "client_credentials",
                "scope": " ".join(self.scopes),
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                # A new assertion every time: Okta consumes its jti even when it answers use_dpop_nonce.
                "client_assertion": self.client_assertion(token_url),
            }
            headers = {"Accept": "application/json"}
            if use_dpop:
                headers["DPoP"] = self.dpop_proof("POST", token_url, nonce=_STATE.nonces.get(token_url))
            self.token_requests += 1
            status, rheaders, body = send(token_url, form, headers)
            nonce = rheaders.get("DPoP-Nonce") or rheaders.get("dpop-nonce")
            if nonce:
                _STATE.nonces[token_url] = nonce
            if status == 200:
                return self._token_from(token_url, rheaders, body, use_dpop)
            data = _json(body)
            error = data.get("error") if isinstance(data, dict) else None
            desc = str(data.get("error_description") or "") if isinstance(data, dict) else ""
            if error == "use_dpop_nonce" and nonce and nonce_rounds < NONCE_ROUNDS:
                nonce_rounds += 1
                use_dpop = True
                continue
            refused = named_refused_scopes(desc, self.scopes) if error == "invalid_scope" else set()
            if refused and set(self.scopes) - refused:
                # Okta refuses the whole token request for one scope the app was not granted. Ask
                # without it: the lists that need it then get 403 insufficient_scope and are skipped
                # with a warning naming the scope, instead of the whole sync failing.
                self.refused_scopes |= refused
                self.scopes = tuple(x for x in self.scopes if x not in refused)
                continue
            if (not use_dpop and not switched_to_dpop and self.dpop is None
                    and _asks_for_dpop(error, desc)):
                # The app requires DPoP: remember it for this process and ask again with a proof.
                _STATE.dpop_required[(token_url, self.client_id)] = True
                use_dpop = switched_to_dpop = True
                continue
            raise self._token_error(token_url, status, rheaders, body, error, desc)

    def _token_from(self, token_url: str, headers: Mapping[str, str], body: bytes, used_dpop: bool) -> _Token:
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
            raise error_from_response(502, headers, b"", method="POST", url=token_url,
                                      hint="token endpoint answered 200 without an access_token")
        token_type = str(data.get("token_type") or "Bearer")
        if token_type.lower() == "dpop" and not used_dpop:
            _STATE.dpop_required[(token_url, self.client_id)] = True
        try:
            lifetime = float(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        margin = min(TOKEN_REFRESH_MARGIN, lifetime / 2)
        return _Token(value=data["access_token"], token_type=token_type,
                      expires_at=time.time() + lifetime - margin, scope=str(data.get("scope") or ""))

    def _token_error(self, token_url: str, status: int, headers: Mapping[str, str], body: bytes,
                     error: str | None, desc: str) -> OktaError:
        low = desc.lower()
        hint = None
        skew = _clock_offset(headers)
        skew_text = (f"this machine's clock is {abs(skew):.0f}s {'ahead of' if skew > 0 else 'behind'} Okta's"
                     if skew is not None and abs(skew) >= 2 else "check this machine's clock (NTP)")
        if error == "invalid_client":
            if "kid" in low or "key id" in low:
                hint = (f"Okta rejected key id (kid) {self.key_id!r}: set the private key id to the kid of "
                        "the public key registered on the service app")
            elif "signature" in low:
                hint = "the private key does not match any public key registered on the service app"
            elif any(w in low for w in ("expired", "future", "issued", "iat", "exp ")):
                hint = f"clock skew: {skew_text}"
            elif "client_id" in low or "client id" in low or "not found" in low:
                hint = f"Okta does not know client id {self.client_id!r}"
            elif "private_key_jwt" in low:
                hint = "set the service app's client authentication to 'Public key / Private key'"
            else:
                hint = "check the OAuth client id, private key and key id"
        elif error == "invalid_scope":
            hint = (f"requested scopes: {' '.join(self.scopes)}; grant them to the service app "
                    "(Okta API Scopes tab) or turn off the options that need them")
        elif error == "invalid_dpop_proof" and any(w in low for w in ("iat", "future", "past", "issued", "expired")):
            hint = f"clock skew: {skew_text}"
        elif error == "use_dpop_nonce":
            hint = "Okta kept asking for a new DPoP nonce"
        err = error_from_response(status, headers, body, method="POST", url=token_url, hint=hint)
        if status < 500 and status != 429 and not isinstance(err, OktaAuthenticationError):
            # Any other refusal of the token request is still an authentication failure for callers.
            err = OktaAuthenticationError(str(err), status=err.status, error_code=err.error_code,
                                          error_summary=err.error_summary, error_causes=err.error_causes,
                                          request_id=err.request_id, method="POST", url=token_url)
        return err


_REFUSED_SCOPES = re.compile(r"scopes are not allowed[^:]*:\s*(.+)$", re.IGNORECASE)


def named_refused_scopes(desc: str, requested: Sequence[str]) -> set[str]:
    """The requested scopes an invalid_scope description names ("The following scopes are not allowed
    for this request: a, b"); empty when it names none."""
    match = _REFUSED_SCOPES.search(desc)
    if not match:
        return set()
    named = {x.strip("[]'\" ") for x in re.split(r"[,\s]+", match.group(1))}
    return {x for x in requested if x in named}


def _asks_for_dpop(error: str | None, desc: str) -> bool:
    low = desc.lower()
    if error == "invalid_dpop_proof" and "missing" in low:
        return True
    if error == "invalid_request" and "dpop" in low:
        return True
    return False


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)
        except ValueError:
            return None


TokenSender = Callable[[str, Mapping[str, str], Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]
