"""Trust on first use for federated peers' long-term keys (agent/fed_pins.py)."""

from __future__ import annotations

import stat
from pathlib import Path

from edgefleet.agent.fed_pins import FILE, PeerPins
from edgefleet.fed import crypto
from edgefleet.fed.messages import Params
from edgefleet.fed.party import Party
from edgefleet.fed.simulate import identities, invite


def test_first_sight_pins_and_a_swapped_key_is_refused(tmp_path: Path) -> None:
    keys = identities(["me", "peer-a", "peer-b"])
    invitation = invite("c1", keys, 2, Params(length=1))
    me = Party(invitation, "me", keys["me"], [1.0])
    pins = PeerPins(tmp_path)
    peers = {v: invitation.parties[v] for v in me.neighbours}
    assert pins.check(peers) is None
    assert pins.load() == peers
    assert stat.S_IMODE((tmp_path / FILE).stat().st_mode) == 0o600
    assert pins.check(peers) is None  # the same keys again: fine

    # the server swaps peer-a's long-term key (to sit in the middle of its channels)
    swapped = {**peers, "peer-a": crypto.public_key(crypto.new_private_key())}
    reason = pins.check(swapped)
    assert reason is not None and "peer-a" in reason and "--fed-repin peer-a" in reason
    assert pins.load() == peers  # nothing re-pinned

    # the operator confirms peer-a was re-enrolled: the next sight pins the new key
    assert pins.forget(["peer-a"]) == ["peer-a"]
    assert pins.check(swapped) is None
    assert pins.load()["peer-a"] == swapped["peer-a"]
    assert pins.forget(["all"]) == ["me", "peer-a", "peer-b"][1:]
    assert pins.load() == {}


def test_a_corrupt_pin_file_declines_rather_than_trusting(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text('{"version": 1, "peers": {"a": "not base64!"}}')
    reason = PeerPins(tmp_path).check({"a": bytes(32)})
    assert reason is not None and "cannot be read" in reason
