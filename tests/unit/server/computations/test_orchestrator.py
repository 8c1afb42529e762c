"""The server's orchestrator, driven in-process: parties answer through a fake
transport, so rounds, timeouts, declines, disconnects and impostors are exact."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from edgefleet.fed.errors import ProtocolAborted, ProtocolViolation
from edgefleet.fed.messages import Abort, AdvertiseKeys, FedMessage, Invitation, MaskedInput, Task
from edgefleet.fed.party import Party
from edgefleet.fed.simulate import identities, invite
from edgefleet.fed.stats import params_for
from edgefleet.server.computations.orchestrator import Orchestrator, Outcome

NAMES = ["d1", "d2", "d3", "d4", "d5", "d6", "d7"]
Behaviour = Callable[[str, FedMessage], FedMessage | bool | None]


def world(threshold: int = 4) -> tuple[Invitation, dict[str, bytes], dict[str, list[float]]]:
    rng = random.Random(3)
    keys = identities(NAMES)
    task = Task(project="default", dataset="r", op="sum", column="x")
    inv = invite("c1", keys, threshold, params_for("sum")).model_copy(update={"task": task})
    values = {n: [float(rng.randint(1, 9)), rng.uniform(-100, 100)] for n in NAMES}
    return inv, keys, values


World = tuple[Invitation, dict[str, bytes], dict[str, list[float]]]


async def drive(
    behaviour: Behaviour | None = None, made: World | None = None
) -> tuple[Outcome, dict[str, list[float]]]:
    """``behaviour(device, message)``: a reply to send instead, None for silence,
    False to disconnect, True for the honest answer."""
    inv, keys, values = made or world()
    parties = {n: Party(inv, n, keys[n], values[n]) for n in NAMES}
    gone: set[str] = set()
    orchestrator: Orchestrator

    def react(device: str, message: FedMessage) -> None:
        choice = behaviour(device, message) if behaviour else True
        if choice is False:
            gone.add(device)
            orchestrator.deliver(device, None)
            return
        if choice is None:
            return
        if choice is not True:
            orchestrator.deliver(device, choice)
            return
        party = parties[device]
        try:  # as the agent does: a party that aborts says why
            reply = party.advertise() if isinstance(message, Invitation) else party.handle(message)
        except ProtocolAborted as exc:
            reply = Abort(computation_id="c1", reason=exc.reason)
        except ProtocolViolation:
            return  # logged and ignored by the agent
        if reply is not None:
            orchestrator.deliver(device, reply)

    async def send(device: str, message: FedMessage) -> bool:
        if device in gone:
            return False
        asyncio.get_running_loop().call_soon(react, device, message)
        return True

    names = {n: n.upper() for n in NAMES}
    orchestrator = Orchestrator(inv, "sum", None, names, 0.3, send)
    return await orchestrator.run(), values


def total(values: dict[str, list[float]], devices: list[str]) -> float:
    return sum(values[d][1] for d in devices)


async def test_everyone_answers() -> None:
    outcome, values = await drive()
    assert outcome.state == "done" and outcome.participants == NAMES
    assert abs(outcome.result["value"] - total(values, NAMES)) < 1e-9  # type: ignore[index]
    assert {p["status"] for p in outcome.parties.values()} == {"included"}


async def test_decline_silence_and_disconnect_after_masking() -> None:
    def behaviour(device: str, message: FedMessage) -> FedMessage | bool | None:
        if device == "d1" and isinstance(message, Invitation):
            return Abort(computation_id="c1", reason="dataset 'r' does not allow sum")
        if device == "d2" and message.type == "fed.inbox":
            return None  # never sends its masked input: dropped at the timeout
        # d3 sent its masked input, then vanishes
        return not (device == "d3" and message.type == "fed.unmask_request")

    outcome, values = await drive(behaviour)
    assert outcome.state == "done"
    assert outcome.participants == NAMES[2:]
    assert abs(outcome.result["value"] - total(values, NAMES[2:])) < 1e-9  # type: ignore[index]
    parties = outcome.parties
    assert parties["d1"] == {
        "name": "D1", "status": "declined", "round": "advertise",
        "reason": "dataset 'r' does not allow sum",
    }  # fmt: skip
    assert parties["d2"]["status"] == "dropped" and parties["d2"]["round"] == "masked"
    assert "did not answer" in parties["d2"]["reason"]
    assert parties["d3"]["status"] == "included" and parties["d3"]["round"] == "unmask"


async def test_a_device_cannot_speak_for_another() -> None:
    forged: list[str] = []

    def behaviour(device: str, message: FedMessage) -> FedMessage | bool | None:
        if device == "d2" and message.type == "fed.inbox":
            fake = MaskedInput(computation_id="c1", sender="d1", vector=bytes(32))
            forged.append(device)
            return fake
        if device == "d1" and isinstance(message, Invitation):
            return None
        return True

    outcome, values = await drive(behaviour)
    assert forged and outcome.state == "done"
    assert outcome.participants == NAMES[2:]  # d2 sent nothing in its own name
    assert abs(outcome.result["value"] - total(values, NAMES[2:])) < 1e-9  # type: ignore[index]


async def test_below_threshold_fails_and_releases_nothing() -> None:
    def behaviour(device: str, message: FedMessage) -> FedMessage | bool | None:
        return not (device in ("d1", "d2", "d3", "d4") and message.type == "fed.inbox")

    outcome, _ = await drive(behaviour)
    assert outcome.state == "failed" and outcome.result is None and outcome.participants == []
    assert outcome.error == (
        "only 3 parties answered round masked; threshold is 4; nothing was released"
    )


async def test_a_party_given_another_invitation_is_caught() -> None:
    made = world()
    _, keys, values = made

    def behaviour(device: str, message: FedMessage) -> FedMessage | bool | None:
        if device == "d1" and isinstance(message, Invitation):
            other = message.model_copy(update={"threshold": 5})  # what a lying server might do
            advert: AdvertiseKeys = Party(other, "d1", keys["d1"], values["d1"]).advertise()
            return advert
        return True

    outcome, _ = await drive(behaviour, made)
    assert outcome.state == "failed" and "not authentic" in (outcome.error or "")
