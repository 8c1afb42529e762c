"""Fixed point in Z_{2^k}, packed lanes, the mask generator, and Shamir over 32 bytes."""

from __future__ import annotations

import os
from fractions import Fraction

import pytest

from edgefleet.fed import crypto
from edgefleet.fed.messages import Params
from edgefleet.fed.ring import Ring, add_pairwise, pairwise_mask, remove_pairwise


def test_fixed_point_round_trip_is_exact_for_dyadic_values() -> None:
    ring = Ring(Params(length=4))
    values = [0.0, -1.5, 2.0**-40, -(2.0**60)]
    assert ring.decode(ring.encode(values)) == [Fraction(v) for v in values]


def test_lanes_wrap_without_touching_their_neighbours() -> None:
    ring = Ring(Params(length=3))
    top = ring.modulus - 1
    a = ring.encode([0.0, 0.0, 0.0])
    b = int.from_bytes(b"".join(e.to_bytes(ring.lane, "little") for e in [top, 1, top]), "little")
    assert ring.elements(ring.add(b, b)) == [top - 1, 2, top - 1]
    assert ring.elements(ring.sub(a, b)) == [1, ring.modulus - 1, 1]
    assert ring.sub(ring.add(a, b), b) == a


def test_wire_format_round_trips_and_checks_its_length() -> None:
    ring = Ring(Params(length=5))
    vector = ring.mask(os.urandom(32), "test")
    data = ring.to_wire(vector)
    assert len(data) == 5 * 16
    assert ring.from_wire(data) == vector
    assert ring.elements(vector) == [
        int.from_bytes(data[i * 16 : (i + 1) * 16], "little") for i in range(5)
    ]
    with pytest.raises(ValueError):
        ring.from_wire(data[:-1])


def test_masks_are_deterministic_and_domain_separated() -> None:
    ring = Ring(Params(length=64))
    seed = os.urandom(32)
    assert ring.mask(seed, "a", "c1") == ring.mask(seed, "a", "c1")
    assert ring.mask(seed, "a", "c1") != ring.mask(seed, "a", "c2")
    assert ring.mask(seed, "a", "c1") != ring.mask(seed, "b", "c1")
    assert max(ring.elements(ring.mask(seed, "a"))) >= 2**120  # full-width elements


def test_pairwise_masks_cancel_in_the_sum() -> None:
    ring = Ring(Params(length=8))
    a, b = crypto.new_private_key(), crypto.new_private_key()
    ab = crypto.agree(a, crypto.public_key(b))
    assert ab == crypto.agree(b, crypto.public_key(a))
    mask = pairwise_mask(ring, ab, "c", "u", "v")
    assert mask == pairwise_mask(ring, ab, "c", "v", "u")
    x = ring.encode([1.0] * 8)
    y_u = add_pairwise(ring, x, mask, "u", "v")
    y_v = add_pairwise(ring, x, mask, "v", "u")
    assert ring.add(y_u, y_v) == ring.add(x, x)
    assert remove_pairwise(ring, y_u, mask, "u", "v") == x


def test_input_outside_the_bound_is_refused() -> None:
    ring = Ring(Params(length=2, bound=10.0))
    for bad in ([11.0, 0.0], [float("nan"), 0.0], [float("inf"), 0.0], [1.0]):
        with pytest.raises(ValueError):
            ring.encode(bad)


def test_the_most_parties_at_the_bound_do_not_overflow() -> None:
    params = Params(length=1, ring_bits=64, frac_bits=40, bound=2.0**21)
    ring = Ring(params)
    total = 0
    for _ in range(params.max_parties()):
        total = ring.add(total, ring.encode([-(2.0**21)]))
    assert ring.decode(total) == [Fraction(-3 * 2**21)]


def test_shamir_shares_a_32_byte_secret_with_threshold() -> None:
    secret = os.urandom(32)
    shares = crypto.split(secret, 3, 5)
    assert all(len(s) == 32 for s in shares)
    assert crypto.combine([(1, shares[0]), (3, shares[2]), (5, shares[4])]) == secret
    assert crypto.combine([(1, shares[0]), (2, shares[1])]) != secret
