"""The server's cheap construction of roster entries is exactly pydantic's
``model_construct``: same fields, same fields-set, same JSON, equal, frozen; a
pydantic upgrade that changes the model's internals fails here, not on the wire."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from edgefleet.fed.aggregator import roster_entry
from edgefleet.fed.messages import Roster, RosterEntry


@pytest.mark.parametrize("tag", [bytes(range(32)), None], ids=["tag", "no-tag"])
def test_roster_entry_is_what_model_construct_builds(tag: bytes | None) -> None:
    s, c = os.urandom(32), os.urandom(32)
    fast = roster_entry("device-00007", s, c, tag)
    slow = RosterEntry.model_construct(party="device-00007", s_public=s, c_public=c, tag=tag)
    assert fast == slow and type(fast) is RosterEntry
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    with pytest.raises(ValidationError):
        fast.party = "other"  # type: ignore[misc]  # frozen like any message
    roster = Roster.model_construct(
        computation_id="c", recipient="device-00001", threshold=2, entries=[fast]
    )
    assert Roster.model_validate_json(roster.model_dump_json()).entries == [slow]
