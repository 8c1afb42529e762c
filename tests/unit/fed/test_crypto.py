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


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), b"", "x" * 32, bytearray(32), None, 7])
def test_an_exchange_refuses_keys_that_are_not_32_bytes(bad: object) -> None:
    """A key that is not 32 bytes (or not bytes at all), on either side, is tampering."""
    private, public = crypto.generate(), crypto.public_key(crypto.generate())
    with pytest.raises(TamperedMessage):
        crypto.agree(bad, public)  # type: ignore[arg-type]
    with pytest.raises(TamperedMessage):
        crypto.agree(private, bad)  # type: ignore[arg-type]
    assert len(crypto.agree(private, public)) == 32


def test_a_pair_context_is_the_framed_canonical_pair() -> None:
    for u, v in [("a", "b"), ("b", "a"), ("device-00002", "device-00010"), ("x", "x")]:
        expected = crypto.frame("cid", *crypto.pair(u, v))
        assert crypto.pair_context("cid", u, v) == expected == crypto.pair_context("cid", v, u)


def test_a_private_key_has_32_bytes() -> None:
    with pytest.raises(ValueError):
        crypto.public_key(bytes(31))


def test_derivations_are_pinned_to_known_bytes() -> None:
    """Devices of every version must derive the same keys, MACs and masks (their
    pairwise masks cancel only then): these bytes came from the stdlib-HMAC code."""
    import hashlib

    secret = bytes(range(32))
    assert crypto.kdf(secret, "pairwise-mask", "c1", "alice", "bob").hex() == (
        "8ed49f491a98378444a55dab5b1b09c5544c15f98a2a8881931da9ad53109279"
    )
    tag = crypto.mac(secret, "advertise", "c1", "alice", "bob", bytes(32), b"\1" * 32, b"\2" * 32)
    assert tag.hex() == "b0f5bee3553076f9d75aa4c86e8832850db7748092773103143ad63a39e41ec0"
    stream = crypto.keystream(secret, 80_000, "self-mask", "c1", "alice")
    assert hashlib.sha256(stream).hexdigest() == (
        "27e0741696da7f0e4590b6a81cfe1f9561f5f3b07846305d70f15fa2be97c18d"
    )
    assert crypto.commit(secret, "c1", "alice").hex() == (
        "91dacbdb11dacb59920b4f4a5f59c6986b32124159d6a3958ee220375eb1a26d"
    )


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_hmac_is_the_stdlib_hmac(key_length: int) -> None:
    import hmac
    import os

    for _ in range(10):
        key, message = os.urandom(key_length), os.urandom(key_length * 3 % 150)
        assert crypto.hmac_sha256(key, message) == hmac.digest(key, message, "sha256")


def test_masks_from_pre_framed_info_are_the_labelled_keystream() -> None:
    import os

    secret, zeros, out = os.urandom(32), bytes(1000), bytearray(1015)
    info = crypto.labelled("pairwise-mask") + crypto.frame("c1", "a", "b")
    crypto.keystream_into(secret, zeros, out, info)
    assert bytes(out[:1000]) == crypto.keystream(secret, 1000, "pairwise-mask", "c1", "a", "b")
    assert crypto.derive(secret, info) == crypto.kdf_reference(
        secret, "pairwise-mask", "c1", "a", "b"
    )
