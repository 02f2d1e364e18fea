"""The tenant's Okta domain: normalized to a base URL, validated so credentials only ever go to it.

Accepted: `acme.okta.com`, `https://acme.okta.com/`, custom domains (`login.acme.com`), an explicit
port. Refused: paths, queries, fragments, userinfo, schemes other than https, plain http except
for loopback hosts (the simulator on 127.0.0.1 / localhost / ::1), and link-local (169.254.169.254,
the cloud metadata service), unspecified or multicast IP addresses.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

__all__ = ["InvalidDomain", "normalize_domain", "is_loopback_host", "origin_of"]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Okta-hosted org domains; the "-admin" host of these is the Admin Console, which the API refuses.
_OKTA_SUFFIXES = (".okta.com", ".oktapreview.com", ".okta-emea.com", ".okta-gov.com", ".okta.mil")


class InvalidDomain(ValueError):
    """The Okta domain is unusable; the message says what is wrong with it."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(host: str, shown: str) -> None:
    if not host:
        raise InvalidDomain(f"Okta domain {shown!r} has no host name")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        # Link-local (169.254.169.254 is the cloud metadata service), unspecified and multicast
        # addresses are never an Okta org: refuse them so credentials cannot be sent there.
        mapped = getattr(ip, "ipv4_mapped", None) or ip
        if mapped.is_link_local or mapped.is_unspecified or mapped.is_multicast:
            raise InvalidDomain(f"Okta domain {shown!r} is a link-local, unspecified or multicast address, "
                                "not an Okta org")
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise InvalidDomain(f"Okta domain {shown!r} has an invalid host name {host!r}")
    for suffix in _OKTA_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)].endswith("-admin"):
            org = name[: -len(suffix)][: -len("-admin")] + suffix
            raise InvalidDomain(
                f"Okta domain {shown!r} is the Admin Console host; use the org domain {org!r}")


def normalize_domain(domain: str) -> str:
    """Return the tenant's base URL (`https://acme.okta.com`, no trailing slash) or raise InvalidDomain."""
    if not isinstance(domain, str):
        raise InvalidDomain(f"Okta domain must be a string, got {type(domain).__name__}")
    raw = domain.strip()
    if not raw:
        raise InvalidDomain("Okta domain is empty")
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    if any(c.isspace() for c in raw):
        raise InvalidDomain(f"Okta domain {shown!r} contains whitespace")
    has_scheme = "://" in raw
    try:
        parts = urlsplit(raw if has_scheme else "https://" + raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidDomain(f"Okta domain {shown!r} is not a valid host[:port]: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InvalidDomain(f"Okta domain {shown!r} uses scheme {scheme!r}; only https is allowed")
    if "@" in parts.netloc:
        # Never echo userinfo back: it may hold a password.
        raise InvalidDomain("Okta domain must not contain user information (user:password@)")
    if parts.path not in ("", "/"):
        raise InvalidDomain(f"Okta domain {shown!r} has a path {parts.path!r}; give only the host, e.g. acme.okta.com")
    if parts.query or "?" in raw:
        raise InvalidDomain(f"Okta domain {shown!r} has a query string; give only the host")
    if parts.fragment or "#" in raw:
        raise InvalidDomain(f"Okta domain {shown!r} has a fragment; give only the host")
    host = (parts.hostname or "").lower()
    _check_host(host, shown)
    if scheme == "http" and not is_loopback_host(host):
        raise InvalidDomain(
            f"Okta domain {shown!r} uses plain http; only https is allowed (http only for loopback hosts)")
    host_part = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    if port is not None and port != default_port:
        return f"{scheme}://{host_part}:{port}"
    return f"{scheme}://{host_part}"


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL, with the default port filled in; for same-origin checks."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80 if scheme == "http" else 0)
    return scheme, (parts.hostname or "").lower(), port
