"""Secrets sealed to one device: what travels from server to agent, and what
the agent keeps on disk in ``desired.json``.

Trust: the server knows each device's long-term X25519 public key (sent at
enrollment, :mod:`edgefleet.agent.enroll`); only the device holds the private
key (``device.json``, 0600). A value is sealed ECIES-style::

    ephemeral X25519 key e  ──ECDH(e, device)──▶ shared
    HKDF-SHA256(shared, salt = e.pub ‖ device.pub, info = "edgefleet secret v1") ──▶ key
    ChaCha20-Poly1305(key, random nonce, value, aad = device ‖ job ‖ name ‖ version)

    token = "v1." + base64url(e.pub ‖ nonce ‖ ciphertext+tag)

The associated data binds a token to the device, job, secret name and version:
a token copied into another job, another device's desired state or an older
version fails to open instead of delivering the wrong file. Nothing here does
I/O; both sides import it.
"""

from __future__ import annotations

import base64
import binascii
import os

_VERSION = "v1."
_INFO = b"edgefleet secret v1"


class SealError(Exception):
    """A token is malformed, for another device, or tampered with."""


def associated_data(device_id: str, job_id: str, name: str, version: int) -> bytes:
    return "\x00".join((device_id, job_id, name, str(version))).encode()


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO
    ).derive(shared)


def seal(public_key_b64: str, value: bytes, aad: bytes) -> str:
    """Encrypt ``value`` so that only the holder of the private key opens it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    try:
        recipient = base64.b64decode(public_key_b64, validate=True)
        device = X25519PublicKey.from_public_bytes(recipient)
    except (binascii.Error, ValueError) as exc:
        raise SealError("the device's public key is not an X25519 key") from exc
    ephemeral = X25519PrivateKey.generate()
    raw = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = _key(ephemeral.exchange(device), raw, recipient)
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, value, aad)
    return _VERSION + base64.urlsafe_b64encode(raw + nonce + sealed).decode()


def open_sealed(private_key_b64: str, token: str, aad: bytes) -> bytes:
    """The value of a token sealed to this device; :class:`SealError` otherwise."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if not token.startswith(_VERSION):
        raise SealError("not a sealed secret this agent understands (expected v1)")
    try:
        blob = base64.urlsafe_b64decode(token[len(_VERSION) :])
        if len(blob) < 32 + 12 + 16:
            raise ValueError("too short")
        private = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64))
        ephemeral = X25519PublicKey.from_public_bytes(blob[:32])
    except (binascii.Error, ValueError) as exc:
        raise SealError(f"malformed sealed secret ({exc})") from exc
    mine = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = _key(private.exchange(ephemeral), blob[:32], mine)
    try:
        return ChaCha20Poly1305(key).decrypt(blob[32:44], blob[44:], aad)
    except InvalidTag as exc:
        raise SealError(
            "the sealed secret does not open with this device's key (sealed to another "
            "device or job, or altered)"
        ) from exc
