"""X25519 through libsodium (PyNaCl) is the same function as through
``cryptography`` (which enrollment uses to make the keys) and refuses
low-order points."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edgefleet.fed import crypto
from edgefleet.fed.errors import TamperedMessage


def test_keys_and_secrets_match_cryptography() -> None:
    for _ in range(20):
        ours = X25519PrivateKey.generate()  # as enrollment makes them
        raw = ours.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = ours.public_key().public_bytes_raw()
        assert crypto.public_key(raw) == public == crypto.public_key(ours)
        peer = crypto.generate()  # raw, unclamped: clamped on use by both libraries
        peer_public = crypto.public_key(peer)
        assert crypto.agree(raw, peer_public) == crypto.agree_reference(raw, peer_public)
        assert crypto.agree(peer, public) == crypto.agree(raw, peer_public)


@pytest.mark.parametrize(
    "point",
    [
        bytes(32),
        (1).to_bytes(32, "little"),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
)
def test_low_order_points_are_refused(point: bytes) -> None:
    with pytest.raises(TamperedMessage):
        crypto.agree(crypto.generate(), point)


def test_a_private_key_has_32_bytes() -> None:
    with pytest.raises(ValueError):
        crypto.public_key(bytes(31))
