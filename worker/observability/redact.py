"""Redaction of secrets in text that is about to be logged.

Two layers, because each misses what the other catches:
- patterns for the shapes secrets take in this product (SSWS / Bearer / DPoP authorization
  values, JWTs such as access tokens, DPoP proofs and client assertions, PEM blocks, Fernet keys,
  `name=value` pairs whose name says secret, passwords in URLs);
- the literal values of the secret settings of this process (OKTASYNC_SECRET_KEY, the embedded
  mode's OKTASYNC_API_TOKEN / OKTASYNC_OKTA_PRIVATE_KEY, Flower's credentials), wherever they appear.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"

# Settings whose values are secrets (comma-separated lists are split: the secret key ring).
SECRET_ENV_VARS = (
    "OKTASYNC_SECRET_KEY", "OKTASYNC_API_TOKEN", "OKTASYNC_OKTA_PRIVATE_KEY",
    "FLOWER_BASIC_AUTH", "FLOWER_OAUTH2_SECRET", "FLOWER_COOKIE_SECRET",
)
# URL settings that may carry a password (redis://:pw@host, postgresql://user:pw@host).
URL_ENV_VARS = ("OKTASYNC_BROKER_URL", "OKTASYNC_REDIS_URL", "OKTASYNC_DATABASE_URL")

_NAMES = (r"api[_-]?token|access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|client[_-]?assertion"
          r"|private[_-]?key|secret[_-]?key|password|passwd|secret|dpop|authorization|cookie[_-]?secret"
          r"|basic[_-]?auth")

# (cheap guard on the lowercased text, pattern, replacement): a pattern runs only when its guard
# matches, which keeps an ordinary log line at a few microseconds.
_PATTERNS: list[tuple[re.Pattern[str] | None, re.Pattern[str], str]] = [
    # PEM blocks, including one cut short before its END line.
    (re.compile("-----begin"), re.compile(r"-----BEGIN [A-Z0-9 ]*-----.*?(?:-----END [A-Z0-9 ]*-----|\Z)", re.S),
     "[REDACTED PEM]"),
    # Same with the newlines escaped (a PEM inside a repr or JSON string).
    (re.compile("-----begin"),
     re.compile(r"-----BEGIN [A-Z0-9 ]*-----(?:\\n|[A-Za-z0-9+/=\s])*(?:-----END [A-Z0-9 ]*-----)?"), "[REDACTED PEM]"),
    # Authorization values: SSWS <token>, Bearer <token>, DPoP <token>, Basic <b64>.
    (re.compile("ssws|bearer|dpop|basic"),
     re.compile(r"\b(SSWS|Bearer|DPoP|Basic)(\s+|%20)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1 " + MASK),
    # JWTs anywhere: access tokens, DPoP proofs, client assertions.
    (re.compile("eyj"), re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[REDACTED JWT]"),
    # name=value / "name": "value" / 'name': 'value' where the name says secret.
    (re.compile("token|secret|assertion|key|passw|dpop|authorization|auth"),
     re.compile(r"""(?i)((?:["']?)\b(?:""" + _NAMES + r""")\b["']?\s*[:=]\s*)(["']?)(?!\[REDACTED)([^\s"',;&}\]]+)"""),
     r"\1\2" + MASK),
    # Passwords in URLs: scheme://user:password@host.
    (re.compile("://[^\\s]*@"), re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.I), r"\1" + MASK + "@"),
    # Okta API tokens (00 + 40 characters) and Fernet keys (32 bytes, url-safe base64).
    (None, re.compile(r"\b00[A-Za-z0-9_-]{38,}"), "[REDACTED TOKEN]"),
    (None, re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}="), "[REDACTED KEY]"),
]


def _literals_from_env(env: Mapping[str, str]) -> list[str]:
    values: list[str] = []
    for name in SECRET_ENV_VARS:
        raw = env.get(name, "")
        if not raw:
            continue
        values.append(raw)
        values.extend(part.strip() for part in raw.split(","))
        if name == "FLOWER_BASIC_AUTH":  # user:password pairs: the passwords alone too
            values.extend(part.split(":", 1)[1] for part in raw.split(",") if ":" in part)
        if name == "OKTASYNC_OKTA_PRIVATE_KEY":
            values.append(raw.replace("\\n", "\n"))
    for name in URL_ENV_VARS:
        match = re.match(r"[a-z][a-z0-9+.-]*://[^:/@]*:([^@/]+)@", env.get(name, ""), re.I)
        if match:
            values.append(match.group(1))
    # Short values would mask ordinary words; secrets worth the name are longer.
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)


class Redactor:
    """Callable: text -> text with every secret masked."""

    def __init__(self, literals: Iterable[str] = ()):
        self.literals = sorted({v for v in literals if v and len(v) >= 6}, key=len, reverse=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Redactor:
        return cls(_literals_from_env(os.environ if env is None else env))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, MASK)
        low = text.lower()
        for guard, pattern, repl in _PATTERNS:
            if guard is None or guard.search(low):
                text = pattern.sub(repl, text)
                low = text.lower()
        return text


_default: Redactor | None = None


def redact(text: str) -> str:
    """Mask secrets in `text` (patterns, plus this process's secret settings)."""
    global _default
    if _default is None:
        _default = Redactor.from_env()
    return _default(text)


def reset() -> None:
    """Re-read the secret settings (tests, or after the environment changed)."""
    global _default
    _default = None
