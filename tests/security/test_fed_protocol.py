"""An active, lying server and hostile peers against the secure-aggregation
protocol, in-process: equivocation on the survivor list (Bonawitz's round-4
consistency check), forged confirmations, malformed and oversized binary frames
and share records."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgefleet.fed import codec
from edgefleet.fed.aggregator import Aggregator
from edgefleet.fed.errors import ProtocolViolation, TamperedMessage, UnsafeRequest
from edgefleet.fed.messages import (
    SHARE_RECORD,
    Abort,
    FedMessage,
    Invitation,
    MaskedInput,
    Params,
    ShareBundle,
    ShareInbox,
    Survivors,
    UnmaskRequest,
    UnmaskResponse,
)
from edgefleet.fed.party import Party
from edgefleet.fed.simulate import identities, invite
from tests.conftest import Fleet
from tests.support.fedraw import RawDevice
from tests.support.procs import AgentProc, wait_for

NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
PARAMS = Params(length=4)


def masked_world() -> tuple[dict[str, Party], Aggregator, Survivors]:
    """Seven parties (complete graph, t = 4) that all sent their masked inputs."""
    keys = identities(NAMES)
    rng = random.Random(5)
    invitation = invite("eq-1", keys, 4, PARAMS)
    parties = {
        n: Party(invitation, n, keys[n], [rng.uniform(-9, 9) for _ in range(4)]) for n in NAMES
    }
    aggregator = Aggregator(invitation)

    def carry(message: FedMessage) -> FedMessage:
        return codec.decode_frame(codec.encode_frame(message))

    for party in parties.values():
        aggregator.handle(carry(party.advertise()))
    for name, roster in aggregator.rosters().items():
        aggregator.handle(carry(parties[name].share_keys(roster)))
    for name, inbox in aggregator.inboxes().items():
        aggregator.handle(carry(parties[name].masked_input(inbox)))
    return parties, aggregator, aggregator.survivor_list()


def test_an_equivocating_server_is_caught_by_the_consistency_check() -> None:
    """The server tells three parties that alpha dropped (to collect alpha's s-key
    shares from them) and the other three that alpha survived (to collect its
    self-mask shares), and relays every confirmation it got. Each group holds
    fewer than t = 4 confirmations of the list it saw, so every party refuses to
    reveal anything, and alpha's input stays masked."""
    parties, _, honest = masked_world()
    lying = Survivors(
        computation_id="eq-1", survivors=[n for n in NAMES if n != "alpha"], dropped=["alpha"]
    )
    told_dropped = ["bravo", "charlie", "delta"]
    told_survived = ["echo", "foxtrot", "golf"]
    tags = {n: parties[n].consistency(lying) for n in told_dropped}
    tags |= {n: parties[n].consistency(honest) for n in told_survived}
    with pytest.raises(UnsafeRequest):  # alpha itself will not confirm that it dropped
        parties["alpha"].consistency(lying)

    revealed: list[UnmaskResponse] = []
    for name, lists in [(n, lying) for n in told_dropped] + [(n, honest) for n in told_survived]:
        request = UnmaskRequest(
            computation_id="eq-1",
            recipient=name,
            survivors=lists.survivors,
            dropped=lists.dropped,
            tags={s: t.tags[name] for s, t in tags.items() if name in t.tags},  # all of them
        )
        with pytest.raises(TamperedMessage, match="confirmed the survivor list"):
            revealed.append(parties[name].unmask(request))
        assert parties[name].phase == "aborted"
    assert revealed == []


def test_a_request_with_another_list_than_the_confirmed_one_is_refused() -> None:
    parties, aggregator, lists = masked_world()
    for name in NAMES:
        aggregator.handle(parties[name].consistency(lists))
    request = aggregator.unmask_requests()["bravo"]
    switched = request.model_copy(
        update={"survivors": [n for n in NAMES if n != "alpha"], "dropped": ["alpha"]}
    )
    with pytest.raises(TamperedMessage, match="equivocating"):
        parties["bravo"].unmask(switched)


def test_confirmations_the_server_made_up_do_not_count() -> None:
    parties, aggregator, lists = masked_world()
    for name in NAMES:
        aggregator.handle(parties[name].consistency(lists))
    requests = aggregator.unmask_requests()
    forged = requests["bravo"].model_copy(
        update={"tags": {n: bytes(32) for n in requests["bravo"].tags}}
    )
    with pytest.raises(TamperedMessage, match="only 1 of"):
        parties["bravo"].unmask(forged)
    # the genuine request still works for another party
    assert parties["charlie"].unmask(requests["charlie"]).sender == "charlie"


# --- malformed and oversized frames ---------------------------------------------------


def frame_of(message: FedMessage) -> bytes:
    return codec.encode_frame(message)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda f: b"XX" + f[2:],  # magic
        lambda f: f[:3] + bytes([200]) + f[4:],  # unknown type code
        lambda f: f[:3] + bytes([10]) + f[4:],  # type code of another message
        lambda f: f[:4] + (2**31).to_bytes(4, "big") + f[8:],  # header longer than the frame
        lambda f: f[:-1],  # body shorter than announced
        lambda f: f + b"\x00",  # a trailing byte
        lambda f: f[:8] + b"[" + f[9:],  # header not a JSON object
        lambda f: b"",
    ],
)
def test_malformed_frames_are_refused(mangle: object) -> None:
    frame = frame_of(MaskedInput(computation_id="c", sender="alpha", vector=bytes(64)))
    assert codec.decode_frame(frame).type == "fed.masked"
    with pytest.raises(codec.FrameError):
        codec.decode_frame(mangle(frame))  # type: ignore[operator]


def test_oversized_frames_and_bodies_are_refused() -> None:
    frame = frame_of(MaskedInput(computation_id="c", sender="alpha", vector=bytes(4096)))
    with pytest.raises(codec.FrameError, match="over the limit"):
        codec.decode_frame(frame, limit=1024)
    abort = frame_of(Abort(computation_id="c", reason="x"))
    with pytest.raises(codec.FrameError, match="carries no body"):
        codec.decode_frame(abort[:-4] + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(codec.FrameError):  # the shares field is bounded by the model too
        codec.decode_frame(
            frame_of(ShareInbox(computation_id="c", recipient="a", shares=b""))[:-4]
            + (10**8).to_bytes(4, "big")
            + bytes(10**8)
        )


def test_a_large_part_smuggled_into_the_header_is_refused() -> None:
    message = MaskedInput(computation_id="c", sender="alpha", vector=bytes(16))
    header = message.model_dump_json().encode()
    frame = b"EF\x01" + bytes([5]) + len(header).to_bytes(4, "big") + header + bytes(4)
    with pytest.raises(codec.FrameError, match="in the body"):
        codec.decode_frame(frame)


def test_malformed_share_records_are_refused_by_both_ends() -> None:
    _, aggregator, _ = masked_world()
    with pytest.raises(codec.FrameError):
        codec.unpack_shares(bytes(SHARE_RECORD + 1), 7)
    with pytest.raises(codec.FrameError, match="names party #99"):
        codec.unpack_shares((99).to_bytes(4, "big") + bytes(SHARE_RECORD - 4), 7)
    # an aggregator in round 1 refuses a bundle with a truncated record
    fresh = Aggregator(aggregator.invitation)
    with pytest.raises(ProtocolViolation):
        fresh.phase = "shares"
        fresh._adverts = aggregator._adverts  # round 0 as it happened
        fresh.on_shares(
            ShareBundle(
                computation_id="eq-1",
                sender="alpha",
                shares=bytes(SHARE_RECORD * 6 - 1),
                self_mask_commitment=bytes(32),
            )
        )


@pytest.mark.parametrize(
    "names", [["a,b"], ["a b"], "a,,b", [""], ",", "a" * 129, "ok,<script>", "x" * 2_000_000]
)
def test_malformed_party_lists_are_refused(names: object) -> None:
    with pytest.raises(ValidationError):
        Survivors(computation_id="c", survivors=names, dropped=[])


def test_party_lists_travel_as_one_string_and_come_back_as_lists() -> None:
    lists = Survivors(computation_id="c", survivors=["a", "b.c"], dropped=[])
    assert '"survivors":"a,b.c"' in lists.model_dump_json()
    assert codec.decode_frame(codec.encode_frame(lists)) == lists


# --- a hostile agent over the real server -------------------------------------------


def _hostile_frames(invitation: Invitation, me: str) -> list[tuple[str, bytes]]:
    """What a hostile device sends instead of its advertisement: binary frames that
    are malformed, oversized, or name another sender."""
    cid = invitation.computation_id
    someone_else = next(p for p in invitation.parties if p != me)
    good = codec.encode_frame(MaskedInput(computation_id=cid, sender=me, vector=bytes(64)))
    shares = codec.encode_frame(ShareInbox(computation_id=cid, recipient=me, shares=b""))
    pickled = pickle.dumps({"computation_id": cid, "sender": me})  # never unpickled
    return [
        ("garbage", codec.MAGIC + random.randbytes(200)),
        ("unknown type", good[:3] + bytes([200]) + good[4:]),
        ("header past the end", good[:4] + (2**31).to_bytes(4, "big") + good[8:]),
        ("header not JSON", good[:8] + b"\x80" + good[9:]),
        ("pickle as header", good[:4] + len(pickled).to_bytes(4, "big") + pickled + bytes(4)),
        ("body over its limit", shares[:-4] + (2**20).to_bytes(4, "big") + bytes(2**20)),
        ("truncated", good[:-1]),
        (  # well formed, in another device's name: refused by the orchestrator
            "impersonation",
            codec.encode_frame(MaskedInput(computation_id=cid, sender=someone_else, vector=b"")),
        ),
    ]


@pytest.mark.slow
def test_malformed_binary_frames_from_a_hostile_agent_hurt_nobody_else(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server()
    key, rng = fleet.key(), random.Random(5)
    total, agents = 0.0, []
    for name in ["ann", "ben", "cid", "mallory"]:
        csv = tmp_path / f"{name}.csv"
        rows = [round(rng.uniform(-50.0, 50.0), 3) for _ in range(30)]
        total += sum(rows) if name != "mallory" else 0.0
        csv.write_text("x\n" + "".join(f"{v}\n" for v in rows))
        agent = AgentProc(fleet.workdir, [server.url], key=key, name=name)
        done = subprocess.run(
            [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", "readings",
             str(csv), "--state-dir", str(agent.state_dir)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        fleet.procs.append(agent)
        agent.start()
        agents.append(agent)
    ids = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        wait_for(lambda: len(client.datasets(dataset="readings")) == 4, 60, what="4 datasets")
        agents[-1].stop()  # mallory's credential now drives a hostile agent
        mallory = RawDevice(server.url, agents[-1].state_dir, protocol=3, hostile=_hostile_frames)
        mallory.start()
        try:
            wait_for(
                lambda: all(d["is_online"] for d in client.datasets(dataset="readings")),
                30,
                what="all four online",
            )
            result = client.compute("readings", "sum", "x", devices=ids, round_timeout=5, wait=True)
            assert not mallory.closed_by_server  # refused frame by frame, not a crash
            # the same connection still works: the device is online after the attack
            assert any(
                d["device"] == ids[-1] and d["is_online"]
                for d in client.datasets(dataset="readings")
            )
        finally:
            mallory.stop()
    assert mallory.error is None, mallory.error
    assert len(mallory.sent_hostile) == 8
    assert result["state"] == "done", result
    assert sorted(result["participants"]) == sorted(ids[:3])  # mallory dropped, alone
    assert abs(result["result"]["value"] - total) < 1e-6
    log = server.log()
    assert log.count("dropped a binary frame") == 7, log[-3000:]
    assert "Traceback" not in log


def test_a_server_shrinking_the_ring_gets_refusals_never_a_wrapped_sum() -> None:
    """The server picks the ring (Params.fitting); a hostile one may pick a 64-bit
    ring with a tiny bound or room for fewer parties than it invites. Devices
    refuse an input above the bound (naming no value) and every invitation whose
    ring could overflow, so no sum can wrap around into a misleading result."""
    keys = identities(NAMES)
    tiny = Params(length=4, ring_bits=64, frac_bits=24, bound=1.0)
    invitation = invite("shrunk", keys, 4, tiny)
    with pytest.raises(ProtocolViolation, match="input refused") as refused:
        Party(invitation, "alpha", keys["alpha"], [0.5, -0.5, 1.5, 0.0])
    assert "1.5" not in str(refused.value)
    Party(invitation, "alpha", keys["alpha"], [1.0, -1.0, 0.5, 0.0])  # at the bound: fine
    cramped = Params(length=4, ring_bits=64, frac_bits=40, bound=2.0**21)  # room for 3
    with pytest.raises(ValidationError, match="overflow the ring"):
        invite("cramped", keys, 4, cramped)
    forged = invitation.model_dump(mode="json")
    forged["params"] = cramped.model_dump()
    with pytest.raises(ValidationError):
        Invitation.model_validate(forged)
