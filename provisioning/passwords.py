"""Password hashing (argon2id via argon2-cffi) and the random secrets of sessions and tokens.

Parameters: argon2id, 19 MiB, 2 iterations, 1 lane, the OWASP Password Storage Cheat Sheet's
first recommendation, about 20 ms here. Hashes carry their parameters, so raising them later
re-hashes each password at its owner's next login (``needs_rehash``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, exceptions

MIN_LENGTH = 8
MAX_LENGTH = 128

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
#: Verified against when the account does not exist, so a miss costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class WeakPassword(ValueError):
    pass


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    if password.strip() == "" or len(set(password)) < 3:
        raise WeakPassword("a password needs more than one or two different characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or malformed hash costs the same and fails."""
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (exceptions.VerificationError, exceptions.InvalidHashError, ValueError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except (exceptions.InvalidHashError, ValueError):
        return True


def is_hash(text: str) -> bool:
    return text.startswith("$argon2")


def new_secret(prefix: str = "") -> str:
    """A 256-bit random secret (session cookie, API token, enrolment code)."""
    return prefix + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """What is stored for a high-entropy secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
