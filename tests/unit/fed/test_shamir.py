"""Batched Shamir sharing over GF(2**256 + 297)."""

from __future__ import annotations

import os
import random

import pytest

from edgefleet.fed import shamir


def is_probable_prime(n: int) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    rng = random.Random(1)
    for _ in range(32):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def test_the_modulus_is_a_prime_above_every_32_byte_secret() -> None:
    assert shamir.P > 2**256 and is_probable_prime(shamir.P)


def test_any_t_holders_rebuild_every_secret_of_the_batch() -> None:
    secrets = [int.from_bytes(os.urandom(32), "big") for _ in range(3)]
    xs = [2, 5, 7, 11, 12]
    shares = shamir.split(secrets, 3, xs)
    for chosen in ([0, 1, 2], [4, 2, 0], [1, 3, 4]):
        got = shamir.combine([xs[j] for j in chosen], [shares[j] for j in chosen])
        assert got == secrets
    # t - 1 holders learn nothing useful: the "reconstruction" is another number
    assert shamir.combine(xs[:2], shares[:2]) != secrets


def test_lagrange_coefficients_are_cached_per_holder_set() -> None:
    shamir.lagrange_at_zero.cache_clear()
    secrets = [int.from_bytes(os.urandom(32), "big") for _ in range(4)]
    shares = shamir.split(secrets, 2, [1, 2, 3])
    for _ in range(3):
        assert shamir.combine([1, 3], [shares[0], shares[2]]) == secrets
    assert shamir.lagrange_at_zero.cache_info().misses == 1


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        shamir.split([1], 4, [1, 2, 3])
    with pytest.raises(ValueError):
        shamir.split([1], 2, [0, 1])  # 0 would hand out the secret itself
    with pytest.raises(ValueError):
        shamir.split([shamir.P], 2, [1, 2])
    with pytest.raises(ValueError):
        shamir.from_bytes(shamir.P.to_bytes(33, "big"))
    with pytest.raises(ValueError):
        shamir.from_bytes(bytes(32))


def test_lagrange_coefficients_are_the_exact_fractions() -> None:
    """The small-integer products (reduced only at the one inversion) give the
    textbook l_j = prod x_m / (x_m - x_j), for any holder set up to 10,000 parties."""
    from fractions import Fraction

    rng = random.Random(7)
    for _ in range(30):
        xs = tuple(rng.sample(range(1, 10_001), rng.randint(1, 40)))
        for xj, coefficient in zip(xs, shamir.lagrange_at_zero(xs), strict=True):
            exact = Fraction(1)
            for xm in xs:
                if xm != xj:
                    exact *= Fraction(xm, xm - xj)
            assert coefficient == exact.numerator * pow(exact.denominator, -1, shamir.P) % shamir.P


@pytest.mark.parametrize("count", [1, 2, 5])
def test_packed_sharing_keeps_every_secret_apart(count: int) -> None:
    """split evaluates all secrets' polynomials in one packed integer: secrets at the
    field's edges, the widest x and the largest threshold still come back exactly,
    from any t holders, and each holder's shares lie in the field."""
    rng = random.Random(count)
    secrets = [shamir.P - 1, 0, *[rng.randrange(shamir.P) for _ in range(count)]][:count]
    xs = [10_000, 9_999, *rng.sample(range(1, 9_999), 38)]
    shares = shamir.split(secrets, 40, xs)
    assert all(0 <= value < shamir.P for row in shares for value in row)
    assert shamir.combine(xs, shares) == secrets
    picked = rng.sample(range(len(xs)), 40)
    assert shamir.combine([xs[i] for i in picked], [shares[i] for i in picked]) == secrets
    wrong = [*shares[:39], [(value + 1) % shamir.P for value in shares[39]]]
    assert shamir.combine(xs, wrong) != secrets  # one wrong share spoils every secret
