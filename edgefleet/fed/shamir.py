"""Shamir secret sharing over the prime field GF(P), P = 2**256 + 297, in batches.

A party shares *all* its secrets of a round (its s-key and its self-mask seed,
both 32 bytes, so both < P) with one set of random polynomials evaluated at the
same holders; the server reconstructs every secret whose shares come from the
same holders with one set of Lagrange coefficients (:func:`lagrange_at_zero`,
computed once per holder set and cached). All arithmetic is Python integers:
a 257-bit multiplication is one C call, and a round needs only
``secrets x holders x t`` of them, so no vector library is needed for speed.

Why not pycryptodome's Shamir (used before): it works over GF(2**128) in pure
Python, one secret and one Lagrange interpolation at a time (12 s of the 34.9 s
the issue measured); this module does the same maths, batched.

x coordinates are the parties' global Shamir indices (position in the
invitation's order, plus one); 0 is never a holder, so the secret is f(0).
Shares travel as 33-byte big-endian field elements.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Sequence
from functools import lru_cache

P = 2**256 + 297  # the smallest prime above 2**256 (checked in the unit tests)
SHARE_BYTES = 33


def split(secrets: Sequence[int], threshold: int, xs: Sequence[int]) -> list[list[int]]:
    """Shares of every secret at every x: ``out[j][i]`` is the share of secret i for
    the holder at ``xs[j]``. Each secret gets its own random polynomial of degree
    threshold - 1 (coefficients from the OS's CSPRNG)."""
    if not 1 <= threshold <= len(xs):
        raise ValueError(f"threshold {threshold} with {len(xs)} holders")
    if len(set(xs)) != len(xs) or any(not 0 < x < P for x in xs):
        raise ValueError("holder coordinates must be distinct and non-zero")
    if any(not 0 <= s < P for s in secrets):
        raise ValueError("a secret is outside the field")
    # All secrets' polynomials evaluated at once: coefficient j of every secret sits
    # in one integer, each in its own lane of ``lane`` bits. The lanes never carry
    # into each other (each holds sum_j c_j x**j < P * threshold * max(xs)**(t-1)),
    # so one Horner pass per holder does the work of len(secrets) passes.
    count = len(secrets)
    lane = P.bit_length() + threshold * max(xs).bit_length() + threshold.bit_length()
    randoms = _coefficients((threshold - 1) * count)
    packed = [_pack(secrets, lane)]
    packed += [_pack(randoms[j :: threshold - 1], lane) for j in range(threshold - 1)]
    packed.reverse()  # highest degree first, for Horner
    mask = (1 << lane) - 1
    out: list[list[int]] = []
    for x in xs:
        acc = 0
        for c in packed:
            acc = acc * x + c
        # lanes peeled off the low end and reduced in one pass (the two list
        # comprehensions per holder this replaces cost ~15 % of a split)
        row = [0] * count
        for i in range(count - 1, -1, -1):
            row[i] = (acc & mask) % P
            acc >>= lane
        out.append(row)
    return out


def _pack(values: Sequence[int], lane: int) -> int:
    """values[0] in the highest lane, values[-1] in the lowest."""
    out = 0
    for value in values:
        out = (out << lane) | value
    return out


_DRAW = 40  # bytes per coefficient: 320 bits reduced mod a 257-bit P (bias < 2**-63)


def _coefficients(count: int) -> list[int]:
    """``count`` uniformly random field elements from one read of the OS's CSPRNG
    (one call, not one per coefficient: ~20 % of a party's sharing was syscalls)."""
    pool = _random.token_bytes(_DRAW * count)
    return [int.from_bytes(pool[i : i + _DRAW], "big") % P for i in range(0, len(pool), _DRAW)]


@lru_cache(maxsize=256)
def lagrange_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    """The coefficients l_j with f(0) = sum_j l_j * f(x_j) for any polynomial of
    degree < len(xs): one modular inverse per holder set, reused for every secret."""
    if len(set(xs)) != len(xs) or any(not 0 < x < P for x in xs):
        raise ValueError("holder coordinates must be distinct and non-zero")
    # x are small Shamir indices: prod x_m and prod (x_m - x_j) are exact integers of
    # a few hundred bits, so no reduction is needed until the one inversion below
    everything = 1
    for x in xs:
        everything *= x
    dens = []  # l_j = (prod_{m != j} x_m) / (prod_{m != j} (x_m - x_j)) = everything / den_j
    for xj in xs:
        den = xj
        for xm in xs:
            if xm != xj:
                den *= xm - xj
        dens.append(den % P)
    # Montgomery's trick: one modular inversion for all the denominators
    prefix = [1]
    for den in dens:
        prefix.append(prefix[-1] * den % P)
    inverse = pow(prefix[-1], -1, P) * (everything % P) % P
    out = [0] * len(dens)
    for j in range(len(dens) - 1, -1, -1):
        out[j] = inverse * prefix[j] % P
        inverse = inverse * dens[j] % P
    return tuple(out)


def combine(xs: Sequence[int], shares: Sequence[Sequence[int]]) -> list[int]:
    """Every secret from exactly-threshold holders: ``shares[j][i]`` is holder j's
    share of secret i. With fewer holders than the threshold the result is a
    uniformly random field element, never an error: callers check it."""
    coefficients = lagrange_at_zero(tuple(xs))
    count = len(shares[0]) if shares else 0
    out = []
    for i in range(count):
        out.append(sum(c * row[i] for c, row in zip(coefficients, shares, strict=True)) % P)
    return out


def to_bytes(value: int) -> bytes:
    return value.to_bytes(SHARE_BYTES, "big")


def from_bytes(data: bytes) -> int:
    """A share from the wire; refuses anything that is not a field element."""
    if len(data) != SHARE_BYTES:
        raise ValueError(f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= P:
        raise ValueError("a share is outside the field")
    return value
