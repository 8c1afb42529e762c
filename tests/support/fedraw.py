"""A device in a federated computation over a raw WebSocket, for tests that need
an agent the real one will not be: one that speaks an older protocol (JSON
only, a mixed fleet) or a hostile one that sends malformed binary frames.

It uses a real, enrolled device's identity and datasets (from an agent's state
dir, that agent stopped) and a real :class:`~edgefleet.fed.party.Party`, so
only the transport is the test's own.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from edgefleet.agent.datasets.catalog import Catalog
from edgefleet.agent.state import Identity
from edgefleet.fed import codec
from edgefleet.fed.messages import FedMessage, Invitation
from edgefleet.fed.party import Party
from edgefleet.wire.fed_relay import FedRelay
from edgefleet.wire.messages import (
    DeviceFacts,
    Heartbeat,
    Hello,
    Welcome,
    decode,
    encode,
)

# what a hostile device sends instead of its advertisement: (name, frame)
Hostile = Callable[[Invitation, str], list[tuple[str, bytes]]]


class RawDevice:
    def __init__(
        self, server_url: str, state_dir: Path, protocol: int, hostile: Hostile | None = None
    ) -> None:
        self.identity = Identity.model_validate_json((state_dir / "device.json").read_text())
        self.url = server_url.replace("http://", "ws://") + "/api/v1/agent/connect"
        self.catalog = Catalog(state_dir)
        self.catalog.refresh()
        self.protocol = protocol
        self.hostile = hostile
        self.welcome_protocol: int | None = None
        self.received: dict[str, int] = {"text": 0, "binary": 0}  # fed frames by kind
        self.sent_bytes = 0  # fed frames this device sent, as they went on the wire
        self.sent_hostile: list[str] = []
        self.error: BaseException | None = None
        self.closed_by_server = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._parties: dict[str, Party] = {}

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.identity.credential}"}
        try:
            with connect(self.url, additional_headers=headers, max_size=16 * 1024 * 1024) as ws:
                ws.send(Hello(protocol=self.protocol, facts=DeviceFacts()).model_dump_json())
                last_beat = time.monotonic()
                while not self._stop.is_set():
                    if time.monotonic() - last_beat > 2.0:
                        ws.send(encode(Heartbeat()))
                        last_beat = time.monotonic()
                    try:
                        frame = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    self._on_frame(ws, frame)
        except ConnectionClosed:
            self.closed_by_server = not self._stop.is_set()
        except BaseException as exc:  # surfaced by the test through .error
            self.error = exc

    def _on_frame(self, ws: ClientConnection, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            if not frame.startswith(codec.MAGIC):
                return  # a stream frame: not used here
            self.received["binary"] += 1
            self._step(ws, codec.decode_frame(frame))
            return
        message = decode(frame)
        if isinstance(message, Welcome):
            self.welcome_protocol = message.protocol
        if isinstance(message, FedRelay):
            self.received["text"] += 1
            self._step(ws, message.payload)

    def _step(self, ws: ClientConnection, payload: FedMessage) -> None:
        if isinstance(payload, Invitation):
            if self.hostile is not None:
                for name, bad in self.hostile(payload, self.device_id):
                    ws.send(bad)
                    self.sent_hostile.append(name)
                return
            assert payload.task is not None and self.identity.private_key is not None
            vector = self.catalog.contribution(payload.task, payload.threshold)
            key = base64.b64decode(self.identity.private_key)
            joined = self._parties[payload.computation_id] = Party(
                payload, self.device_id, key, vector
            )
            self._send(ws, joined.advertise())
            return
        party = self._parties.get(payload.computation_id)
        if party is None:
            return
        reply = party.handle(payload)
        if reply is not None:
            self._send(ws, reply)

    def _send(self, ws: ClientConnection, reply: FedMessage) -> None:
        if self.protocol >= 3 and codec.has_body(reply):
            frame: str | bytes = codec.encode_frame(reply)
            self.sent_bytes += len(frame)
        else:
            frame = encode(FedRelay(payload=reply))
            self.sent_bytes += len(frame.encode())
        ws.send(frame)
