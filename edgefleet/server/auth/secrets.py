"""Bearer secrets (API tokens, device credentials, provisioning keys).

They carry 256 bits of randomness, so a fast SHA-256 is the right hash
(a slow password hash would only slow every request down); passwords, which
are low-entropy, use argon2 in :mod:`passwords`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "eft_"
DEVICE_PREFIX = "efd_"
KEY_PREFIX = "efk_"


def generate(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """What lists show so a user can tell secrets apart without seeing them."""
    return secret[:10]


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a portal session: derived from the session's secret, so it
    needs no storage, changes with every sign-in, and cannot be guessed from outside."""
    return hmac.new(session_secret.encode(), b"edgefleet-csrf", hashlib.sha256).hexdigest()[:40]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
