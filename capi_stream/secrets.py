"""Tenant credentials sealed at rest with Fernet (AES-128-CBC + HMAC-SHA256) keys.

``CAPI_SECRETS_KEY`` holds one or more Fernet keys, comma-separated: the first seals, every
one opens (``MultiFernet``), so rotation is: put the new key first and keep the old one
after it, re-seal every row (``capi tenants rotate-key``), then drop the old key.

The box travels with the session factory (``build_session_factory(engine, secrets=box)``):
the repository functions in ``storage.tenants`` seal and open, nobody else does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.orm import Session

from capi_stream.errors import SecretsKeyError

__all__ = [
    "KEY_FILE_NAME",
    "SECRETS_INFO_KEY",
    "SecretBox",
    "build_secret_box",
    "generate_key",
    "keep_key_file",
    "read_key_file",
    "secret_box_of",
]

SECRETS_INFO_KEY = "capi_secret_box"
KEY_FILE_NAME = "secrets.key"
_SETTING = "CAPI_SECRETS_KEY"


@dataclass(frozen=True, slots=True)
class SecretBox:
    """Seals credential mappings into Fernet tokens and opens them again."""

    _fernet: MultiFernet
    key_count: int

    def seal(self, credentials: Mapping[str, Any]) -> str:
        """A Fernet token of the JSON of ``credentials``, under the first key."""
        plain = json.dumps(dict(credentials), sort_keys=True, separators=(",", ":"))
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> dict[str, Any]:
        """The credentials of a token sealed under any of the keys.

        Raises:
            SecretsKeyError: no key opens it (wrong key, or its key was dropped too early).
        """
        try:
            plain = self._fernet.decrypt(sealed.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise SecretsKeyError(
                f"stored tenant credentials cannot be decrypted with {_SETTING} "
                f"({self.key_count} key(s)): a wrong key, or the key that sealed them was "
                "removed; keep the old key after the new one until `capi tenants rotate-key` ran"
            ) from None
        opened: dict[str, Any] = json.loads(plain)
        return opened

    def reseal(self, sealed: str) -> str:
        """The same credentials sealed under the first key (``MultiFernet.rotate``).

        Raises:
            SecretsKeyError: no key opens it.
        """
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            self.open(sealed)  # raises with the explanation
            raise  # pragma: no cover - open() raised


def build_secret_box(keys: str | None) -> SecretBox | None:
    """The box of comma-separated Fernet ``keys``; None when no key is given.

    Raises:
        SecretsKeyError: a key is not a Fernet key (32 url-safe base64-encoded bytes).
    """
    parts = [part.strip() for part in (keys or "").split(",") if part.strip()]
    if not parts:
        return None
    fernets: list[Fernet] = []
    for position, part in enumerate(parts, start=1):
        try:
            fernets.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            # Never echo the value: it is (part of) a secret.
            raise SecretsKeyError(
                f"{_SETTING} key {position} of {len(parts)} is not a Fernet key "
                "(32 url-safe base64 bytes; make one with `capi tenants generate-key`)"
            ) from None
    return SecretBox(MultiFernet(fernets), len(fernets))


def generate_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode("ascii")


def read_key_file(path: Path) -> str | None:
    """The key kept in ``path`` (by ``keep_key_file``), or None when there is none."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def keep_key_file(path: Path) -> str:
    """The key in ``path``, created (mode 0600, owner only) when missing: for `make run`."""
    existing = read_key_file(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    # O_EXCL: two starts racing cannot both write a key; the loser reads the winner's.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path) or key
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def secret_box_of(session: Session) -> SecretBox:
    """The box the session's factory was built with.

    Raises:
        SecretsKeyError: the process has no key.
    """
    box = session.info.get(SECRETS_INFO_KEY)
    if not isinstance(box, SecretBox):
        raise SecretsKeyError(
            f"{_SETTING} is not set: tenant credentials are stored encrypted; set it to the "
            "Fernet key(s) they were sealed with (`make run` keeps one in data/secrets.key)"
        )
    return box
