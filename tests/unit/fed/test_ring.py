"""Fixed point in Z_{2^k} as numpy limbs, the mask generator, and the wire format."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from edgefleet.fed import crypto
from edgefleet.fed.messages import Params
from edgefleet.fed.ring import Ring, add_pairwise, pairwise_mask, remove_pairwise


@pytest.mark.parametrize("bits", [64, 128, 192])
def test_fixed_point_round_trip_is_exact_for_dyadic_values(bits: int) -> None:
    bound = 2.0**60 if bits > 64 else 2.0**20
    ring = Ring(Params(length=4, ring_bits=bits, frac_bits=40 if bits > 64 else 24, bound=bound))
    values = [0.0, -1.5, 2.0**-(ring.frac_bits), -bound]
    assert ring.decode(ring.encode(values)) == [Fraction(v) for v in values]


@pytest.mark.parametrize("bits", [64, 128, 256])
def test_arithmetic_matches_python_integers_mod_2k(bits: int) -> None:
    """Carries and borrows cross limbs exactly; elements never touch each other."""
    ring = Ring(Params(length=64, ring_bits=bits, frac_bits=0, bound=1.0))
    a, b = ring.mask(os.urandom(32), "a"), ring.mask(os.urandom(32), "b")
    top = ring.modulus - 1
    edge = ring.from_wire(b"".join(e.to_bytes(ring.width, "little") for e in [top, 1] * 32))
    for x, y in ((a, b), (edge, edge), (a, edge)):
        xs, ys = ring.elements(x), ring.elements(y)
        assert ring.elements(ring.add(x, y)) == [
            (p + q) % ring.modulus for p, q in zip(xs, ys, strict=True)
        ]
        assert ring.elements(ring.sub(x, y)) == [
            (p - q) % ring.modulus for p, q in zip(xs, ys, strict=True)
        ]
        assert np.array_equal(ring.sub(ring.add(x, y), y), x)


def test_wire_format_round_trips_and_checks_its_length() -> None:
    ring = Ring(Params(length=5))
    vector = ring.mask(os.urandom(32), "test")
    data = ring.to_wire(vector)
    assert len(data) == 5 * 16
    assert np.array_equal(ring.from_wire(data), vector)
    assert ring.elements(vector) == [
        int.from_bytes(data[i * 16 : (i + 1) * 16], "little") for i in range(5)
    ]
    with pytest.raises(ValueError):
        ring.from_wire(data[:-1])


def test_masks_are_deterministic_and_domain_separated() -> None:
    ring = Ring(Params(length=64))
    seed = os.urandom(32)
    assert np.array_equal(ring.mask(seed, "a", "c1"), ring.mask(seed, "a", "c1"))
    assert not np.array_equal(ring.mask(seed, "a", "c1"), ring.mask(seed, "a", "c2"))
    assert not np.array_equal(ring.mask(seed, "a", "c1"), ring.mask(seed, "b", "c1"))
    assert max(ring.elements(ring.mask(seed, "a"))) >= 2**120  # full-width elements


def test_pairwise_masks_cancel_in_the_sum() -> None:
    ring = Ring(Params(length=8))
    a, b = crypto.new_private_key(), crypto.new_private_key()
    ab = crypto.agree(a, crypto.public_key(b))
    assert ab == crypto.agree(b, crypto.public_key(a))
    mask = pairwise_mask(ring, ab, "c", "u", "v")
    assert np.array_equal(mask, pairwise_mask(ring, ab, "c", "v", "u"))
    x = ring.encode([1.0] * 8)
    y_u = add_pairwise(ring, x, mask, "u", "v")
    y_v = add_pairwise(ring, x, mask, "v", "u")
    assert np.array_equal(ring.add(y_u, y_v), ring.add(x, x))
    assert np.array_equal(remove_pairwise(ring, y_u, mask, "u", "v"), x)


def test_input_outside_the_bound_is_refused() -> None:
    ring = Ring(Params(length=2, bound=10.0))
    for bad in ([11.0, 0.0], [float("nan"), 0.0], [float("inf"), 0.0], [1.0]):
        with pytest.raises(ValueError):
            ring.encode(bad)
    for bad in ([0.0, -10.5], [float("-inf"), 0.0], [0.0, float("nan")]):  # the sign, any place
        with pytest.raises(ValueError):
            ring.encode(bad)
    assert ring.decode_floats(ring.encode([-10.0, 10.0])) == [-10.0, 10.0]  # the bound itself


def test_the_most_parties_at_the_bound_do_not_overflow() -> None:
    params = Params(length=1, ring_bits=64, frac_bits=40, bound=2.0**21)
    ring = Ring(params)
    total = ring.zero()
    for _ in range(params.max_parties()):
        total = ring.add(total, ring.encode([-(2.0**21)]))
    assert ring.decode(total) == [Fraction(-3 * 2**21)]


def test_ring_sizes_are_whole_limbs() -> None:
    with pytest.raises(ValueError):
        Params(length=1, ring_bits=72)


def test_the_two_hmac_hkdf_is_rfc5869_hkdf() -> None:
    for _ in range(20):
        secret = os.urandom(32)
        assert crypto.kdf(secret, "label", "c1", "u") == crypto.kdf_reference(
            secret, "label", "c1", "u"
        )


@pytest.mark.parametrize("bits", [64, 128])
def test_masks_added_in_place_equal_the_allocating_ones(bits: int) -> None:
    """Masker (one reused keystream buffer, in-place add) is the same arithmetic as
    ring.mask + add/sub: devices of either code compute one and the same sum."""
    ring = Ring(Params(length=257, ring_bits=bits, frac_bits=0, bound=1.0))
    seed, shared = os.urandom(32), os.urandom(32)
    x = ring.mask(os.urandom(32), "input")
    expected = ring.add(x, ring.mask(seed, "self-mask", "c", "u"))
    expected = add_pairwise(ring, expected, pairwise_mask(ring, shared, "c", "u", "v"), "u", "v")
    acc, masker = x.copy(), ring.masker()
    masker.self_mask(acc, seed, "c", "u", 1)
    masker.pairwise(acc, shared, "c", "u", "v", 1)
    assert np.array_equal(acc, expected)
    masker.pairwise(acc, shared, "c", "u", "v", -1)  # what the server does for a dropped v
    masker.self_mask(acc, seed, "c", "u", -1)
    assert np.array_equal(acc, x)


@pytest.mark.parametrize(("me", "peer"), [("u", "v"), ("v", "u")])
def test_a_mask_from_the_held_pair_context_is_the_pairwise_mask(me: str, peer: str) -> None:
    """A party frames each neighbour's pair context once and masks with pairwise_in:
    the same vector as pairwise, on either side of the pair (or the masks would not
    cancel against a device that masks with pairwise)."""
    ring = Ring(Params(length=300, ring_bits=64, frac_bits=0, bound=1.0))
    shared, x = os.urandom(32), ring.mask(os.urandom(32), "input")
    expected, acc, masker = x.copy(), x.copy(), ring.masker()
    masker.pairwise(expected, shared, "c", me, peer, 1)
    masker.pairwise_in(acc, shared, crypto.pair_context("c", me, peer), 1 if peer > me else -1)
    assert np.array_equal(acc, expected)
    assert not np.array_equal(acc, x)


@pytest.mark.parametrize("bits", [64, 128])
def test_float_decoding_equals_the_exact_fractions_rounded(bits: int) -> None:
    ring = Ring(Params(length=1000, ring_bits=bits, frac_bits=24, bound=1024.0))
    vector = ring.mask(os.urandom(32), "any")  # every bit pattern, sign included
    assert ring.decode_floats(vector) == [float(v) for v in ring.decode(vector)]
