"""Secrets at rest: SIP passwords, device credentials and config keys are stored encrypted.

A stolen database file or backup must not hand out every phone's SIP password (toll fraud). Values
are sealed with AES-256-GCM under a key that lives outside the database: the ``secret_key``
setting (base64, for several nodes sharing one PostgreSQL database) or, by default, a key file
created once in the data directory (mode 0600).

Stored form: ``enc1:<key id>:<base64(nonce + ciphertext + tag)>``. The key id (first 8 hex digits of
the key's SHA-256) lets several keys be loaded at once, so keys can be rotated: the first key seals,
every listed key opens (``deskprov secrets rotate`` re-seals old rows). A node with the wrong key
fails with a message that says so instead of serving garbage.

The box travels with the engine (``attach``): :class:`EncryptedText` columns find it on the
dialect of the connection that reads or writes them, so two servers with different data
directories in one process never mix their keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

PREFIX = "enc1"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE = "secret.key"
_DIALECT_ATTR = "deskprov_secret_box"


class SecretKeyError(RuntimeError):
    """No usable key, or a value sealed under a key this node does not have."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_keys(text: str) -> list[bytes]:
    """Keys from the ``secret_key`` setting: base64 keys separated by commas, the sealing key first."""
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            key = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SecretKeyError("secret_key must be base64-encoded 32-byte keys separated by commas") from exc
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"secret_key must be 32-byte keys, not {len(key)} bytes")
        keys.append(key)
    return keys


def new_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


class SecretBox:
    """Seals and opens short secrets; the first key seals, all keys open."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no secret key")
        self._sealing = keys[0]
        self.key_id = key_id(keys[0])
        self._keys = {key_id(k): AESGCM(k) for k in keys}

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.key_id].encrypt(nonce, plaintext.encode("utf-8"), PREFIX.encode())
        return f"{PREFIX}:{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str) -> str:
        prefix, _, rest = stored.partition(":")
        kid, _, payload = rest.partition(":")
        if prefix != PREFIX or not payload:
            raise SecretKeyError("stored secret is not sealed (was the database written without encryption?)")
        aes = self._keys.get(kid)
        if aes is None:
            raise SecretKeyError(f"a secret in the database is sealed with key {kid}; this node has "
                                 f"{', '.join(sorted(self._keys))}: set the same secret_key on every node")
        raw = base64.b64decode(payload)
        try:
            return aes.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], PREFIX.encode()).decode("utf-8")
        except InvalidTag as exc:
            raise SecretKeyError(f"a secret sealed with key {kid} does not open: damaged value") from exc

    def derive_key(self, purpose: bytes) -> bytes:
        """A key for another purpose (e.g. signing digest nonces) that every node holding the
        same sealing key derives alike; it reveals nothing about the sealing key."""
        return hmac.new(self._sealing, purpose, hashlib.sha256).digest()

    def is_current(self, stored: str) -> bool:
        return stored.startswith(f"{PREFIX}:{self.key_id}:")


def load_secret_box(secret_key: str, data_dir: Path) -> SecretBox:
    """The box from the setting, or from (a newly created) key file in the data directory."""
    if secret_key.strip():
        return SecretBox(parse_keys(secret_key))
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_key_text() + "\n")
    return SecretBox(parse_keys(path.read_text()))


def attach(engine: Any, box: SecretBox) -> None:
    """Make ``box`` the one :class:`EncryptedText` columns use on this (async or sync) engine."""
    sync_engine = getattr(engine, "sync_engine", engine)
    setattr(sync_engine.dialect, _DIALECT_ATTR, box)


def box_of(dialect: Any) -> SecretBox:
    box = getattr(dialect, _DIALECT_ATTR, None)
    if box is None:
        raise SecretKeyError("this database engine has no secret key attached (provisioning.secretbox.attach)")
    return box


class EncryptedText(TypeDecorator):
    """A string column stored sealed; reads and writes see the plain value."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else box_of(dialect).seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else box_of(dialect).open(value)
