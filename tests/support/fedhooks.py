"""Test-only hooks into federated computations, installed in a real ``edgefleet``
process started through this file instead of ``python -m edgefleet``.

The shipped agent and server know nothing of these: the hooks wrap their
methods from outside, in the test's child process only (see
:func:`tests.support.procs.edgefleet_argv`). Two hooks, each chosen by an
environment variable that only this module reads:

``EFTEST_FED_FAULT`` (agent)
    Faults at moments a test cannot hit from outside. A comma-separated list of
    ``ACTION[@DATASET]``: ``exit-before-masked`` (the process dies when the share
    inbox arrives, before its masked input), ``exit-after-masked`` (dies right
    after sending it), ``delay-masked:SECONDS`` (waits before masking).
    ``@DATASET`` limits a fault to computations on that dataset.

``EFTEST_FED_TRANSCRIPT`` (server)
    A file path: every federated message the server relays is appended to it as
    one JSON line (direction, device, whether it went as a binary frame, the bytes
    it took on the wire, the message), so a test can show what the server saw.

::

    python tests/support/fedhooks.py agent ...   # install hooks, then edgefleet's CLI
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAULT_ENV = "EFTEST_FED_FAULT"
TRANSCRIPT_ENV = "EFTEST_FED_TRANSCRIPT"
FAULT_ACTIONS = ("exit-before-masked", "exit-after-masked", "delay-masked")

log = logging.getLogger("edgefleet.test.fedhooks")


@dataclass(frozen=True)
class Fault:
    action: str
    seconds: float = 0.0
    dataset: str | None = None


def parse_faults(text: str) -> list[Fault]:
    """``exit-after-masked@flaky,delay-masked:4`` -> two faults; unknown actions fail."""
    faults = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        spec, _, dataset = item.partition("@")
        action, _, seconds = spec.partition(":")
        if action not in FAULT_ACTIONS:
            raise ValueError(f"{FAULT_ENV}: unknown fault {action!r}")
        faults.append(Fault(action, float(seconds or 0), dataset or None))
    return faults


async def apply_faults(faults: list[Fault], moment: str, dataset: str) -> None:
    """Act on the faults that apply at ``moment`` (before-masked, after-masked)."""
    for fault in faults:
        if fault.dataset not in (None, dataset):
            continue
        if fault.action == "delay-masked" and moment == "before-masked":
            log.warning("TEST FAULT: waiting %.1f s before the masked input", fault.seconds)
            await asyncio.sleep(fault.seconds)
        elif fault.action == f"exit-{moment}":
            log.warning("TEST FAULT: the agent process dies now (%s)", fault.action)
            if moment == "after-masked":
                await asyncio.sleep(0.5)  # let the writer put the masked input on the wire
            logging.shutdown()
            os._exit(70)


def install_faults(faults: list[Fault]) -> None:
    """Wrap the agent's federated part: a share inbox is the moment before its
    masked input; relaying the masked input is the moment after."""
    from edgefleet.agent.fed import FederatedPart, Running
    from edgefleet.fed.messages import FedMessage, MaskedInput, ShareInbox

    step, relay = FederatedPart._step, FederatedPart._relay

    async def faulty_step(self: FederatedPart, running: Running, payload: FedMessage) -> None:
        if isinstance(payload, ShareInbox):
            await apply_faults(faults, "before-masked", running.task.dataset)
        await step(self, running, payload)

    async def faulty_relay(self: FederatedPart, payload: FedMessage) -> None:
        await relay(self, payload)
        running = self.running.get(payload.computation_id)
        if isinstance(payload, MaskedInput) and running is not None:
            await apply_faults(faults, "after-masked", running.task.dataset)

    FederatedPart._step = faulty_step  # type: ignore[method-assign]
    FederatedPart._relay = faulty_relay  # type: ignore[method-assign]
    log.warning("TEST FAULTS ARE ENABLED (%s): %s", FAULT_ENV, faults)


# the sizes of typed binary frames sent while the current task relays to one device
_frames: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("frames", default=None)


def install_transcript(path: Path) -> None:
    """Wrap the server's relay so that every message it passes on is written to ``path``."""
    from edgefleet.fed import codec
    from edgefleet.fed.messages import FedMessage
    from edgefleet.server.agent_session import AgentSession
    from edgefleet.server.computations.relay import Relay
    from edgefleet.wire.fed_relay import FedRelay, load
    from edgefleet.wire.link import Link
    from edgefleet.wire.messages import encode

    load()

    def record(direction: str, device: str, payload: FedMessage, frame: int | None) -> None:
        text = encode(FedRelay.model_construct(payload=payload))
        line: dict[str, Any] = {
            "time": time.time(),
            "direction": direction,
            "device": device,
            "binary": frame is not None,
            "bytes": frame if frame is not None else len(text.encode()),
            "message": json.loads(text),
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(line) + "\n")

    send_frame = Link.send_frame

    async def counted_send_frame(self: Link, data: bytes) -> None:
        sizes = _frames.get()
        if sizes is not None:
            sizes.append(len(data))
        await send_frame(self, data)

    to_device = Relay.to_device

    async def recorded_to_device(self: Relay, device_id: str, payload: FedMessage) -> bool:
        sizes: list[int] = []
        token = _frames.set(sizes)
        try:
            return await to_device(self, device_id, payload)
        finally:
            _frames.reset(token)
            record("to", device_id, payload, sizes[0] if sizes else None)

    from_device: Callable[[Relay, AgentSession, FedRelay], Awaitable[None]] = Relay.from_device

    async def recorded_from_device(self: Relay, session: AgentSession, message: FedRelay) -> None:
        record("from", session.device.id, message.payload, None)
        await from_device(self, session, message)

    from_frame = Relay.from_frame

    async def recorded_from_frame(self: Relay, session: AgentSession, data: bytes) -> None:
        try:
            payload = codec.decode_frame(data, limit=self.frame_limit)
        except codec.FrameError:
            pass  # the relay itself drops, counts and logs it
        else:
            record("from", session.device.id, payload, len(data))
        await from_frame(self, session, data)

    Link.send_frame = counted_send_frame  # type: ignore[method-assign]
    Relay.to_device = recorded_to_device  # type: ignore[method-assign]
    Relay.from_device = recorded_from_device  # type: ignore[method-assign]
    Relay.from_frame = recorded_from_frame  # type: ignore[method-assign]
    log.warning("TEST AID: recording relayed federated messages in %s", path)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        # as edgefleet.cli.main does before it imports the agent
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if faults := os.environ.get(FAULT_ENV):
        install_faults(parse_faults(faults))
    if transcript := os.environ.get(TRANSCRIPT_ENV):
        install_transcript(Path(transcript))
    from edgefleet.cli import main as edgefleet_main

    edgefleet_main()


if __name__ == "__main__":
    main()
