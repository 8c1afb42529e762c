"""The key that encrypts registry passwords at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Where the key comes from, in order: ``--secret-key`` / ``EDGEFLEET_SECRET_KEY``
(a Fernet key, or any passphrase of 16+ characters, stretched with HKDF), else
``secret.key`` in the data dir, generated on first start with mode 0600.
Replicas of a scale-out deployment share one database, so they must all be
given the same ``--secret-key``: a key generated in one replica's data dir
cannot read what another replica wrote.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

# ``cryptography`` (~8 MB resident with its own OpenSSL) is imported where a
# secret is first sealed or opened, not by every server's start (issue 16).

KEY_FILE = "secret.key"
_INFO = b"edgefleet registry credentials v1"


class SecretKeyError(Exception):
    """The configured key is unusable, or cannot read a stored secret."""


def _fernet_key(text: str) -> bytes:
    raw = text.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    if len(raw) < 16:
        raise SecretKeyError(
            "the secret key must be a Fernet key or a passphrase of at least 16 characters"
        )
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)
    return base64.urlsafe_b64encode(derived)


def load_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return _fernet_key(configured)
    path = data_dir / KEY_FILE
    try:
        return _fernet_key(path.read_text())
    except FileNotFoundError:
        pass
    key = base64.urlsafe_b64encode(os.urandom(32))  # what Fernet.generate_key() makes
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _fernet_key(path.read_text())
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._key = key
        self._made: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._made is None:
            from cryptography.fernet import Fernet

            self._made = Fernet(self._key)
        return self._made

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with this server's key (is every replica "
                "given the same --secret-key?)"
            ) from exc
