"""DPoP proofs (RFC 9449 as Okta applies it, okta-api.md §2.3): the checks shared by the token
endpoint (oktasim.oauth) and the resource side (oktasim.auth), and the small JOSE helpers they use.
Secrets (proofs, tokens) never go into messages or reprs."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import jwt

# Asymmetric algorithms Okta accepts for client assertions and DPoP proofs (§2.2, §2.3).
ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
ALGS_HEADER = " ".join(ALGS)
PROOF_MAX_AGE = 300            # a DPoP proof older than five minutes is refused (§2.3)
SKEW = 30                      # clock skew tolerated on iat/exp


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """DPoP `ath`: base64url(SHA-256(ASCII token)), no padding (§2.3)."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638 thumbprint of a public JWK (what cnf.jkt holds)."""
    if jwk.get("kty") == "RSA":
        members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    elif jwk.get("kty") == "EC":
        members = {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    else:
        raise ValueError("unsupported kty")
    canon = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canon).digest())


def normalize_htu(url: str) -> str:
    """Scheme and host lower-cased, default port dropped, query and fragment removed (§2.3 htu)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


class JtiCache:
    """Single-use ids remembered until they could no longer be accepted anyway."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()

    def use(self, jti: str, until: float, now: float) -> bool:
        """Record `jti`; False if it was already used."""
        order, seen = self._order, self._seen
        while order and order[0][0] < now:
            seen.pop(order.popleft()[1], None)
        if jti in seen:
            return False
        seen[jti] = until
        order.append((until, jti))
        return True

    def __len__(self) -> int:
        return len(self._seen)


# -- DPoP proofs ----------------------------------------------------------------------------------

class DPoPError(Exception):
    """A refused DPoP proof; `use_nonce` means 'retry with the server's nonce' (use_dpop_nonce)."""

    def __init__(self, description: str, use_nonce: bool = False):
        super().__init__(description)
        self.description = description
        self.use_nonce = use_nonce


_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class DPoPVerifier:
    """Checks DPoP proofs (RFC 9449 as Okta applies it, §2.3) and remembers their jti."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._jtis = JtiCache()
        self._keys: dict[str, object] = {}  # jkt -> public key object (parsing a JWK is not free)

    def verify(self, proof: str, method: str, url: str, *, nonces: tuple[str, ...] | None = None,
               access_token: str | None = None) -> str:
        """Validate `proof` for `method url`; returns the thumbprint (jkt) of its key.
        `nonces`: accepted server nonces (token endpoint); `access_token`: check `ath` against it."""
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise DPoPError("The DPoP proof JWT is malformed.") from None
        if header.get("typ") != "dpop+jwt":
            raise DPoPError("The DPoP proof JWT header 'typ' is invalid.")
        alg = header.get("alg")
        if alg not in ALGS:
            raise DPoPError("The DPoP proof JWT header 'alg' is invalid.")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or _PRIVATE_JWK_MEMBERS & jwk.keys():
            raise DPoPError("The DPoP proof JWT header 'jwk' is invalid.")
        try:
            jkt = jwk_thumbprint(jwk)
            key = self._keys.get(jkt)
            if key is None:
                key = jwt.PyJWK(jwk, alg).key
                if len(self._keys) > 10_000:
                    self._keys.clear()
                self._keys[jkt] = key
        except (KeyError, TypeError, ValueError, jwt.PyJWTError):
            raise DPoPError("The DPoP proof JWT header 'jwk' is invalid.") from None
        now = self._clock()
        try:
            claims = jwt.decode(proof, key, algorithms=[alg], leeway=SKEW,
                                options={"verify_aud": False, "verify_iat": False})
        except jwt.ExpiredSignatureError:
            raise DPoPError("The DPoP proof JWT has expired.") from None
        except jwt.ImmatureSignatureError:
            raise DPoPError("The DPoP proof JWT was issued in the future.") from None
        except jwt.PyJWTError:
            raise DPoPError("The DPoP proof JWT signature is invalid.") from None
        if claims.get("htm") != method.upper():
            raise DPoPError("'htm' claim in the DPoP proof JWT is invalid.")
        htu = claims.get("htu")
        # htu is the URL without query or fragment (§2.3); one carrying them is refused.
        if not isinstance(htu, str) or "?" in htu or "#" in htu or normalize_htu(htu) != normalize_htu(url):
            raise DPoPError("'htu' claim in the DPoP proof JWT is invalid.")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise DPoPError("'iat' claim in the DPoP proof JWT is invalid.")
        if iat > now + SKEW:
            raise DPoPError("The DPoP proof JWT was issued in the future.")
        if iat < now - PROOF_MAX_AGE - SKEW:
            raise DPoPError("The DPoP proof JWT is issued more than five minutes in the past.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise DPoPError("'jti' claim in the DPoP proof JWT is invalid.")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise DPoPError("'ath' claim in the DPoP proof does not match the presented access_token.")
        if nonces is not None and claims.get("nonce") not in nonces:
            raise DPoPError("Authorization server requires nonce in DPoP proof.", use_nonce=True)
        if not self._jtis.use(jti, iat + PROOF_MAX_AGE + 2 * SKEW, now):
            raise DPoPError("The DPoP proof JWT has already been used.")
        return jkt


def header_values(headers, name: str) -> list[str]:
    """All values of header `name` (tornado HTTPHeaders, httpx Headers or a plain dict)."""
    get_list = getattr(headers, "get_list", None)
    if get_list is not None:
        return list(get_list(name))
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        low = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == low), None)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
