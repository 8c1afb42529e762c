"""How the server rebuilds the secrets: owners near each other on the graph's
cycle share one set of holders and one Lagrange combination, and a bad share
still falls back to other holders, owner by owner."""

from __future__ import annotations

import random

from edgefleet.fed import shamir
from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.messages import Invitation, Params, UnmaskRequest
from edgefleet.fed.party import Party
from edgefleet.fed.simulate import identities, invite, to_survivors

PARAMS = Params(length=4, ring_bits=64, frac_bits=8, bound=100.0)
N = 150


def drive(
    invitation: Invitation, keys: dict[str, bytes], silent: set[str]
) -> tuple[dict[str, Party], Aggregator, dict[str, UnmaskRequest]]:
    """Rounds 0-3 by hand (no frames); ``silent`` parties drop before masking, so
    both kinds of secret (their s-keys, the survivors' seeds) are rebuilt."""
    parties = {p: Party(invitation, p, keys[p], [float(i % 7)] * 4) for i, p in enumerate(keys)}
    aggregator = Aggregator(invitation, threads=1)
    for party in parties.values():
        aggregator.handle(party.advertise())
    for p, roster in aggregator.rosters().items():
        aggregator.handle(parties[p].share_keys(roster))
    for p, inbox in aggregator.inboxes().items():
        if p not in silent:
            aggregator.handle(parties[p].masked_input(inbox))
    for p, lists in to_survivors(aggregator.survivor_list()).items():
        aggregator.handle(parties[p].consistency(lists))
    return parties, aggregator, aggregator.unmask_requests()


def expected(keys: dict[str, bytes], silent: set[str]) -> list[float]:
    total = sum(float(i % 7) for i, p in enumerate(keys) if p not in silent)
    return [total] * 4


def test_neighbouring_owners_share_one_lagrange_combination() -> None:
    keys = identities([f"d{i:03d}" for i in range(N)])
    invitation = invite("c-batch", keys, N // 2 + 1, PARAMS)
    silent = set(random.Random(3).sample(sorted(keys), 10))
    parties, aggregator, requests = drive(invitation, keys, silent)
    for p, request in requests.items():
        aggregator.handle(parties[p].unmask(request))
    shamir.lagrange_at_zero.cache_clear()
    assert aggregator.result() == expected(keys, silent)
    owners = N  # 140 survivors' seeds and 10 dropped s-keys
    # one combination per owner before; neighbours on the cycle now share them
    assert shamir.lagrange_at_zero.cache_info().misses <= owners // 5


def test_a_holder_sending_bad_shares_for_everyone_is_skipped_owner_by_owner() -> None:
    keys = identities([f"d{i:03d}" for i in range(N)])
    invitation = invite("c-liar", keys, N // 2 + 1, PARAMS)
    silent = set(random.Random(4).sample(sorted(keys), 5))
    parties, aggregator, requests = drive(invitation, keys, silent)
    liar = sorted(requests)[0]
    for p, request in requests.items():
        response = parties[p].unmask(request)
        if p == liar:  # valid field elements, wrong values: only reconstruction tells
            bad = {o: shamir.to_bytes(1) for o in response.b_shares}
            response = response.model_copy(update={"b_shares": bad})
        aggregator.handle(response)
    assert aggregator.result() == expected(keys, silent)
