"""A party's checks of the survivor list (round 3): every way a server can
misstate who survived is refused before the party MACs anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edgefleet.fed.errors import UnsafeRequest
from edgefleet.fed.messages import FedMessage, Params, Survivors
from edgefleet.fed.simulate import identities, invite, run

NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
VICTIM = "alpha"
Lists = Callable[[list[str], list[str]], tuple[list[str], list[str]]]


def refusal(change: Lists) -> str:
    """The reason ``VICTIM`` gives when shown ``change(survivors, dropped)``
    ("foxtrot" dropped before masking, so both lists hold someone)."""
    keys = identities(NAMES)
    invitation = invite("c-lists", keys, 4, Params(length=2, ring_bits=64, frac_bits=4, bound=8))

    def tamper(party: str, message: FedMessage) -> FedMessage:
        if party == VICTIM and isinstance(message, Survivors):
            survivors, dropped = change(list(message.survivors), list(message.dropped))
            return message.model_copy(update={"survivors": survivors, "dropped": dropped})
        return message

    outcome = run(
        invitation,
        keys,
        {name: [1.0, 2.0] for name in NAMES},
        drop={"foxtrot": "masked"},
        tamper=tamper,
    )
    assert isinstance(outcome.error, UnsafeRequest), outcome.error
    assert outcome.parties[VICTIM].phase == "aborted"
    return outcome.error.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s, d: (s, [*d, "bravo"]), "lists bravo as both survived and dropped"),
        (lambda s, d: ([*s, "bravo"], d), "repeats a party"),
        (lambda s, d: (s, [*d, "mallory"]), "names parties that are not invited"),
        (lambda s, d: ([*s, "mallory"], d), "names parties that are not invited"),
        (lambda s, d: ([p for p in s if p != VICTIM], [*d, VICTIM]), "does not match"),
        (lambda s, d: (s, []), "does not match the parties that shared keys"),
    ],
    ids=["both", "repeated", "stranger-dropped", "stranger-survived", "self-dropped", "hidden"],
)
def test_a_misstated_survivor_list_is_refused(change: Lists, reason: str) -> None:
    assert reason in refusal(change)


def test_the_true_lists_pass() -> None:
    keys = identities(NAMES)
    invitation = invite("c-lists", keys, 4, Params(length=2, ring_bits=64, frac_bits=4, bound=8))
    outcome = run(
        invitation, keys, {name: [1.0, 2.0] for name in NAMES}, drop={"foxtrot": "masked"}
    )
    assert outcome.result == [5.0, 10.0]
