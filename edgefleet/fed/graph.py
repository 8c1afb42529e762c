"""The SecAgg+ neighbourhood graph (Bell et al., CCS 2020): who masks with and
shares to whom, and how many shares rebuild a secret.

Each party u has k neighbours N(u). It masks its input with a pairwise mask per
neighbour and Shamir-shares its s-key and self-mask seed among its *holders*
H(u) = N(u) + {u} with threshold t. With k = O(log n) instead of n - 1, a
party's work and bytes grow with log n, and the server's with n log n.

The graph is a Harary graph H(n, k) over a random order of the parties: each
party is joined to the k/2 nearest parties on either side of a cycle. The order
sorts parties by SHA-256(invitation digest || party), so every party derives the
same graph from the invitation alone and the server cannot place a party next
to chosen peers without re-rolling the computation id (each re-roll is one more
try at a tail event of probability <= 2**-sigma; see below).

Choosing k and t (:func:`choose`), for n parties, dropout rate delta and
corruption bound gamma (the fraction of parties that may collude with the
server). t is a majority of the k + 1 holders (the lying-drop-list argument in
:mod:`edgefleet.fed` needs it), and k is the smallest even number for which::

    correctness:  n * P[Binomial(k + 1, 1 - delta) <  t] <= 2**-eta     (eta = 20)
    privacy:      n * P[Binomial(k + 1, gamma)     >= t] <= 2**-sigma   (sigma = 40)

that is, with the union bound over all parties, no holder set loses more than
k + 1 - t members to dropouts (so every needed secret can be rebuilt) and none
holds t colluders (so none can be rebuilt behind the protocol's back), except
with the stated probabilities. Where no k < n - 1 qualifies, or n <= FULL_UP_TO,
the graph is complete and t is the invitation's majority threshold: exactly
the Bonawitz et al. protocol.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from math import comb

FULL_UP_TO = 20  # below this many parties the complete graph costs little
ETA = 20  # correctness: -log2 of the chance that some secret cannot be rebuilt
SIGMA = 40  # privacy: -log2 of the chance that some holder set has t colluders


@dataclass(frozen=True)
class Shape:
    """k neighbours per party and threshold t among its k + 1 holders."""

    neighbours: int
    threshold: int
    complete: bool


def _upper_tail(trials: int, p: float, at_least: int) -> float:
    """P[Binomial(trials, p) >= at_least], exactly (floats: tiny values are fine)."""
    return sum(
        comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(at_least, trials + 1)
    )


@lru_cache(maxsize=128)
def choose(n: int, threshold: int, dropout: float, corruption: float) -> Shape:
    """The graph for n parties; ``threshold`` is the invitation's (a majority of n),
    used as is when the graph is complete."""
    if n <= FULL_UP_TO:
        return Shape(n - 1, threshold, True)
    for k in range(4, n - 1, 2):
        holders = k + 1
        t = holders // 2 + 1
        lost = _upper_tail(holders, dropout, holders - t + 1)  # fewer than t answer
        colluding = _upper_tail(holders, corruption, t)
        if n * lost <= 2.0**-ETA and n * colluding <= 2.0**-SIGMA:
            return Shape(k, t, False)
    return Shape(n - 1, threshold, True)


def order_key(digest: bytes, party: str) -> bytes:
    return hashlib.sha256(digest + b"\x00" + party.encode()).digest()


@lru_cache(maxsize=16)
def cycle(parties: tuple[str, ...], digest: bytes) -> tuple[str, ...]:
    """The parties in the digest-derived random order the graph joins into a cycle.
    Parties close on it share most of their holders (what the server uses to
    rebuild many secrets from one set of holders)."""
    return tuple(sorted(parties, key=lambda p: order_key(digest, p)))


@lru_cache(maxsize=16)
def neighbourhoods(
    parties: tuple[str, ...], digest: bytes, shape: Shape
) -> dict[str, frozenset[str]]:
    """N(u) for every party: the Harary graph over the digest-derived cycle (cached:
    every party of an in-process run asks for the same graph; do not mutate it)."""
    if shape.complete:
        everyone = frozenset(parties)
        return {p: everyone - {p} for p in parties}
    ring = cycle(parties, digest)
    n, half = len(ring), shape.neighbours // 2
    out: dict[str, frozenset[str]] = {}
    for i, p in enumerate(ring):
        out[p] = frozenset(ring[(i + d) % n] for d in range(-half, half + 1) if d != 0)
    return out
