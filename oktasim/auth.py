"""Who is calling and what they may do: SSWS API tokens with an admin level, and OAuth access
tokens (Bearer or DPoP-bound) issued by oktasim.oauth.TokenEndpoint (okta-api.md §2.1, §2.3–§2.5, §7).

Levels follow the connector's capability table (seeds/000_…): read-only reads everything the
connector syncs except API tokens (the System Log included); app-group-admin may also create and
modify groups, change group membership and app assignments, activate and deactivate apps; only
super-admin changes roles and resource-set bindings, deletes groups, lists and revokes API tokens
and manages users. OAuth tokens are limited by their scopes only (the
service app is taken to hold the super-admin role).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from oktasim.dpop import ALGS_HEADER, DPoPError, DPoPVerifier, header_values, normalize_htu
from oktasim.errors import HeaderOnlyError, OktaError, forbidden, unauthorized
from oktasim.scopes import API_TOKENS_READ

# Accepted when no --api-token is given (public on purpose: the simulator holds no real data).
DEFAULT_TOKEN = "00sim-super-admin-token-0000000000000000000"
LEVELS = ("read-only", "app-group-admin", "super-admin")
DEFAULT_LEVEL = "super-admin"
OPERATIONS = frozenset({
    "read", "group.create", "group.update", "group.delete", "group.membership", "app.assignment",
    "role.assignment", "resourceset.membership", "user.lifecycle", "user.create", "user.delete",
    "app.lifecycle", "api_token.revoke",
})
_ALLOWED: dict[str, frozenset[str]] = {
    "read-only": frozenset({"read"}),
    "app-group-admin": frozenset({"read", "group.create", "group.update", "group.membership",
                                  "app.assignment", "app.lifecycle"}),
    "super-admin": OPERATIONS,
}


@dataclass(frozen=True)
class Principal:
    kind: str                 # "ssws" | "oauth"
    id: str                   # rate-limit principal: a token id (never the token) or the client id
    level: str | None         # SSWS admin level; None for OAuth
    scopes: frozenset[str]    # OAuth scopes granted to the token; empty for SSWS
    # Request context for OAuth WWW-Authenticate challenges (not part of identity).
    scheme: str = field(default="SSWS", compare=False)        # "SSWS" | "Bearer" | "DPoP"
    origin: str = field(default="", compare=False)            # "http://host:port" as addressed
    resource: str = field(default="", compare=False)          # the request path


@dataclass
class _Issued:
    client_id: str
    scopes: frozenset[str]
    expires_at: float
    jkt: str | None           # DPoP key thumbprint the token is bound to (cnf.jkt)


def parse_api_token(spec: str) -> tuple[str, str]:
    """`TOKEN[=LEVEL]` from --api-token -> (token, level). The error never repeats the token."""
    token, sep, level = spec.rpartition("=")
    if not sep:
        token, level = spec, DEFAULT_LEVEL
    elif level not in LEVELS:
        if level and level.replace("-", "").isalpha():
            raise ValueError(f"--api-token: unknown level {level!r}; expected one of {', '.join(LEVELS)}")
        token, level = spec, DEFAULT_LEVEL  # an '=' inside the token itself
    if not token or any(c.isspace() for c in token):
        raise ValueError("--api-token: the token must be non-empty and contain no spaces")
    return token, level


def token_id(token: str) -> str:
    """A stable, non-secret id for an SSWS token (Okta ids start with 00T)."""
    return "00T" + hashlib.sha256(token.encode()).hexdigest()[:17]


class Authenticator:
    def __init__(self, api_tokens: dict[str, str], clock: Callable[[], float] = time.time):
        self.clock = clock
        self._ssws: dict[str, Principal] = {}
        for token, level in api_tokens.items():
            if level not in LEVELS:
                raise ValueError(f"unknown API token level {level!r}; expected one of {', '.join(LEVELS)}")
            self._ssws[token] = Principal("ssws", token_id(token), level, frozenset())
        self._tokens: dict[str, _Issued] = {}
        self._next_purge = 0.0
        self._dpop = DPoPVerifier(clock)
        self._signing_key: rsa.RSAPrivateKey | None = None
        self._kid = "sim" + secrets.token_hex(8)

    # -- issuing (called by the token endpoint) -----------------------------------------------------

    def issue_access_token(self, *, client_id: str, scopes: frozenset[str], jkt: str | None, origin: str,
                           lifetime: int) -> str:
        """A JWT shaped like Okta's (§2.2); it is also looked up here, so clients must treat it as opaque."""
        now = self.clock()
        if self._signing_key is None:  # generated on first use: SSWS-only runs never pay for it
            self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        claims = {
            "ver": 1, "jti": "AT." + secrets.token_urlsafe(32), "iss": origin, "aud": origin,
            "sub": client_id, "iat": int(now), "exp": int(now) + lifetime, "cid": client_id,
            "scp": sorted(scopes),
        }
        if jkt:
            claims["cnf"] = {"jkt": jkt}
        token = jwt.encode(claims, self._signing_key, algorithm="RS256",
                           headers={"kid": self._kid, "typ": "application/okta-internal-at+jwt"})
        if now >= self._next_purge:
            self._tokens = {t: i for t, i in self._tokens.items() if i.expires_at > now}
            self._next_purge = now + 60
        self._tokens[token] = _Issued(client_id, scopes, now + lifetime, jkt)
        return token

    # -- authentication -------------------------------------------------------------------------------

    def authenticate(self, method: str, url: str, headers) -> Principal:
        """The caller of `method url`, or OktaError 401 (E0000011) / 400 (DPoP proof, empty body)."""
        values = header_values(headers, "Authorization")
        auth = values[0] if len(values) == 1 else ""
        scheme, _, credential = auth.partition(" ")
        credential = credential.strip()
        scheme_l = scheme.lower()
        if scheme_l == "ssws":
            principal = self._ssws.get(credential)
            if principal is None:
                raise unauthorized()
            return principal
        if scheme_l in ("bearer", "dpop") and credential:
            return self._oauth(method, url, headers, "DPoP" if scheme_l == "dpop" else "Bearer", credential)
        raise unauthorized()

    def _oauth(self, method: str, url: str, headers, scheme: str, token: str) -> Principal:
        parts = urlsplit(url)
        origin, resource = f"{parts.scheme}://{parts.netloc}", parts.path
        issued = self._tokens.get(token)
        if issued is None:
            raise self._invalid_token(scheme, origin, resource, "The access token is invalid.")
        if self.clock() >= issued.expires_at:
            raise self._invalid_token(scheme, origin, resource, "The token has expired.")
        if scheme == "Bearer" and issued.jkt:
            raise self._invalid_token(scheme, origin, resource,
                                      "The access token is DPoP-bound; use the DPoP authorization scheme.")
        if scheme == "DPoP":
            if not issued.jkt:
                raise self._invalid_token(scheme, origin, resource, "The access token is not DPoP-bound.")
            proofs = header_values(headers, "DPoP")
            try:
                if not proofs:
                    raise DPoPError("The DPoP proof JWT header is missing.")
                if len(proofs) > 1:
                    raise DPoPError("Multiple DPoP proof JWT headers were provided.")
                jkt = self._dpop.verify(proofs[0], method, normalize_htu(url), access_token=token)
                if jkt != issued.jkt:
                    raise DPoPError("The DPoP proof key does not match the key the access token is bound to.")
            except DPoPError as e:
                raise HeaderOnlyError(400, _challenge("DPoP", origin, resource, None, "invalid_dpop_proof",
                                                      e.description)) from None
        return Principal("oauth", issued.client_id, None, issued.scopes, scheme, origin, resource)

    @staticmethod
    def _invalid_token(scheme: str, origin: str, resource: str, description: str) -> OktaError:
        err = unauthorized()
        err.headers["WWW-Authenticate"] = _challenge(scheme, origin, resource, None, "invalid_token", description)
        return err

    # -- authorization --------------------------------------------------------------------------------

    def authorize(self, principal: Principal, scope: str, operation: str) -> None:
        """Raise 403 unless `principal` may perform `operation` needing OAuth `scope`: E0000006 for an
        SSWS level that is too weak, a header-only insufficient_scope challenge for OAuth (§2.4)."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; expected one of {sorted(OPERATIONS)}")
        if principal.kind == "oauth":
            if scope not in principal.scopes:
                raise HeaderOnlyError(403, _challenge(
                    principal.scheme, principal.origin, principal.resource, scope, "insufficient_scope",
                    "The access token provided does not contain the required scopes."))
            return
        level = principal.level or DEFAULT_LEVEL
        if scope == API_TOKENS_READ and level != "super-admin":
            raise forbidden()
        if operation not in _ALLOWED[level]:
            raise forbidden()


def _challenge(scheme: str, origin: str, resource: str, scope: str | None, error: str, description: str) -> str:
    """Okta's WWW-Authenticate value (§2.3, §2.4)."""
    parts = [f'algs="{ALGS_HEADER}"'] if scheme == "DPoP" else []
    parts += [f'authorization_uri="{origin}/oauth2/v1/authorize"', f'realm="{origin}"']
    if scope:
        parts.append(f'scope="{scope}"')
    parts += [f'error="{error}"', f'error_description="{description}"', f'resource="{resource}"']
    return f"{scheme} " + ", ".join(parts)
