"""Credentials encrypted at rest (Fernet, AES-128-CBC + HMAC-SHA256, from `cryptography`).

Keys come from $OKTASYNC_SECRET_KEY: comma-separated Fernet keys, newest first. Every key
decrypts (so rotating in a new key keeps old rows readable); new writes use the first one;
`rotate_credentials` re-encrypts every tenant with it, after which old keys can be dropped.
Errors name the variable and what is wrong with it, never a key or a secret.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from worker import config

ENV_VAR = config.SECRET_KEY_VAR


class SecretKeyError(RuntimeError):
    """The secret key is missing, malformed, or does not decrypt the stored credentials."""


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 of 32 bytes), as `oktasync keygen` prints."""
    return Fernet.generate_key().decode("ascii")


def load_keys(value: str | None = None) -> MultiFernet:
    """Parse comma-separated keys (default: $OKTASYNC_SECRET_KEY), newest first."""
    if value is None:
        value = config.secret_key()
    if not value or not value.strip():
        raise SecretKeyError(
            f"{ENV_VAR} is not set: credentials are encrypted at rest. Create a key with "
            f"`oktasync keygen` and export {ENV_VAR}=<key> (comma-separate several, newest first)")
    fernets = []
    for n, part in enumerate((p.strip() for p in value.split(",")), start=1):
        if not part:
            continue
        try:
            fernets.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise SecretKeyError(
                f"{ENV_VAR}: key #{n} is not a Fernet key (32 bytes, url-safe base64, 44 characters); "
                "create one with `oktasync keygen`") from None
    if not fernets:
        raise SecretKeyError(f"{ENV_VAR} holds no key")
    return MultiFernet(fernets)


class Credentials(dict[str, str]):
    """A decrypted credentials dict whose repr/str never shows the values."""

    def __repr__(self) -> str:
        return f"Credentials({', '.join(f'{k}=***' for k in sorted(self))})"

    __str__ = __repr__


def encrypt_credentials(credentials: Mapping[str, Any], keys: MultiFernet | None = None) -> bytes:
    keys = keys or load_keys()
    return keys.encrypt(json.dumps(dict(credentials), sort_keys=True).encode("utf-8"))


def decrypt_credentials(token: bytes, keys: MultiFernet | None = None, *, what: str = "credentials") -> Credentials:
    keys = keys or load_keys()
    try:
        plain = keys.decrypt(bytes(token))
    except InvalidToken:
        raise SecretKeyError(
            f"{what} cannot be decrypted with the keys in {ENV_VAR}: wrong key, or the key that "
            f"encrypted them was removed (keep old keys after the newest one until `rotate` ran)") from None
    return Credentials(json.loads(plain))


def reencrypt(token: bytes, keys: MultiFernet | None = None, *, what: str = "credentials") -> bytes:
    """Re-encrypt with the newest key (MultiFernet.rotate); raises SecretKeyError if undecryptable."""
    keys = keys or load_keys()
    try:
        return keys.rotate(bytes(token))
    except InvalidToken:
        raise SecretKeyError(f"{what} cannot be decrypted with the keys in {ENV_VAR}") from None


def local_key_file(path: str | os.PathLike[str]) -> str:
    """Read the embedded mode's key from `path`, creating it (mode 0600) with a new key if missing.

    Refuses a file other users can read: that would defeat the encryption.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            raise SecretKeyError(
                f"key file {p} is readable by other users (mode {mode:04o}); run `chmod 600 {p}`") from None
        key = p.read_text("ascii").strip()
        load_keys(key)  # validates; the error does not echo the key
        return key
    key = generate_key()
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
