"""The invitation is bound into round 0: parties shown different invitations
(another task, threshold or peer list) refuse each other's keys."""

from __future__ import annotations

import pytest

from edgefleet.fed import Invitation, Party, TamperedMessage, Task
from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.simulate import identities, invite, run
from edgefleet.fed.stats import params_for

NAMES = ["alpha", "bravo", "charlie", "delta"]


def task(**changes: object) -> Task:
    fields = {"project": "default", "dataset": "r", "op": "sum", "column": "x"} | changes
    return Task(**fields)  # type: ignore[arg-type]


def test_digest_is_canonical_and_covers_the_task() -> None:
    keys = identities(NAMES)
    a = invite("c", keys, 3, params_for("sum")).model_copy(update={"task": task()})
    reordered = a.model_copy(update={"parties": dict(reversed(list(a.parties.items())))})
    assert a.digest() == reordered.digest()
    assert a.digest() != a.model_copy(update={"task": task(column="y")}).digest()
    assert a.digest() != a.model_copy(update={"threshold": 4}).digest()
    assert Invitation.model_validate_json(a.model_dump_json()).digest() == a.digest()


def test_a_party_shown_another_task_is_refused_by_its_peers() -> None:
    keys = identities(NAMES)
    honest = invite("c", keys, 3, params_for("sum")).model_copy(update={"task": task()})
    lied_to = honest.model_copy(update={"task": task(column="salary")})
    vectors = {n: [1.0, 2.0] for n in NAMES}
    parties = {n: Party(lied_to if n == "alpha" else honest, n, keys[n], vectors[n]) for n in NAMES}
    aggregator = Aggregator(honest)
    for party in parties.values():
        aggregator.handle(party.advertise())
    rosters = aggregator.rosters()
    with pytest.raises(TamperedMessage, match="another invitation"):
        parties["bravo"].share_keys(rosters["bravo"])
    with pytest.raises(TamperedMessage):
        parties["alpha"].share_keys(rosters["alpha"])


def test_the_same_invitation_everywhere_still_sums() -> None:
    keys = identities(NAMES)
    invitation = invite("c", keys, 3, params_for("sum")).model_copy(update={"task": task()})
    outcome = run(invitation, keys, {n: [1.0, float(i)] for i, n in enumerate(NAMES)})
    assert outcome.result == [4.0, 6.0]


def test_the_graph_kept_on_an_invitation_is_not_inherited_by_a_copy() -> None:
    """Each invitation keeps its graph; a copy with other parties derives its own
    (a party holding the original's graph would mask with non-neighbours)."""
    names = [f"p{i:02d}" for i in range(30)]  # past FULL_UP_TO: a SecAgg+ graph
    invitation = invite("c", identities(names), 16, params_for("sum"))
    graph = invitation.neighbourhoods()
    assert invitation.neighbourhoods() is graph and set(graph) == set(names)
    fewer = invitation.model_copy(
        update={"parties": dict(list(invitation.parties.items())[:25]), "threshold": 13}
    )
    assert set(fewer.neighbourhoods()) == set(names[:25])
    assert all(neighbours <= set(names[:25]) for neighbours in fewer.neighbourhoods().values())
