"""Secrets sealed to one device open only there, for that job, name and version."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edgefleet.wire.sealed import SealError, associated_data, open_sealed, seal


def _keys() -> tuple[str, str]:
    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def test_round_trip_and_fresh_ciphertext() -> None:
    private, public = _keys()
    aad = associated_data("d1", "j1", "db", 3)
    one, two = seal(public, b"pw", aad), seal(public, b"pw", aad)
    assert one != two and b"pw" not in base64.urlsafe_b64decode(one[3:])
    assert open_sealed(private, one, aad) == b"pw"


@pytest.mark.parametrize(
    "aad",
    [
        associated_data("d2", "j1", "db", 3),  # another device's desired state
        associated_data("d1", "j2", "db", 3),  # another job
        associated_data("d1", "j1", "other", 3),  # another secret's name
        associated_data("d1", "j1", "db", 2),  # an older version
    ],
)
def test_a_token_moved_elsewhere_does_not_open(aad: bytes) -> None:
    private, public = _keys()
    token = seal(public, b"pw", associated_data("d1", "j1", "db", 3))
    with pytest.raises(SealError):
        open_sealed(private, token, aad)


def test_another_key_tampering_and_garbage_fail_cleanly() -> None:
    private, public = _keys()
    other, _ = _keys()
    aad = associated_data("d1", "j1", "db", 1)
    token = seal(public, b"pw", aad)
    # A character in the middle of the ciphertext: the last one before the "="
    # may carry only padding bits, and flipping those leaves the bytes unchanged.
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    for bad_key, bad_token in (
        (other, token),
        (private, flipped),
        (private, "v1.AAAA"),
        (private, "x"),
    ):
        with pytest.raises(SealError) as caught:
            open_sealed(bad_key, bad_token, aad)
        assert "pw" not in str(caught.value)
    with pytest.raises(SealError):
        seal("not-base64!", b"pw", aad)
