"""Password hashes (argon2id).

A verification costs tens of milliseconds of CPU and 64 MiB: callers on the
event loop run it through ``ctx.limits.hash`` (a few worker threads), never
inline. An account that does not exist, or has no password, is checked
against a fixed dummy hash, so its answer takes as long as a real one and
timing does not tell which usernames exist.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return str(_hasher.hash(password))


@cache
def _dummy_hash() -> str:
    """Made once, with the same parameters as every real hash."""
    return hash_password("edgefleet: an account that does not exist")


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with no hash, the same work and False."""
    try:
        matched = bool(_hasher.verify(password_hash or _dummy_hash(), password))
    except (VerificationError, InvalidHashError):
        return False
    return matched and password_hash is not None
