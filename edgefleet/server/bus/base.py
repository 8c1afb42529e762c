"""The bus: how server replicas reach each other.

Anything that must cross replicas goes through a :class:`Bus`: pushes and
commands to a device whose connection another replica holds, bridged exec /
log / proxy streams, and events for live views. One process uses
:class:`~edgefleet.server.bus.memory.MemoryBus`; replicas share a NATS server
(:class:`~edgefleet.server.bus.nats.NatsBus`). Subjects follow NATS rules:
dot-separated tokens, ``*`` matches one token and ``>`` the rest.

Delivery is at most once, in order per subscription, and handlers of one
subscription run one at a time. Nothing here is durable: state that must
survive lives in the database, and the bus only says "look again" or
carries live traffic.

Errors::

    BusError
     +-- NoResponders   nobody is subscribed to the subject of a request
     +-- BusTimeout     a request got no reply in time
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class BusError(Exception):
    pass


class NoResponders(BusError):
    pass


class BusTimeout(BusError):
    pass


@dataclass(frozen=True)
class BusMessage:
    subject: str
    data: bytes
    reply: str | None = None


Handler = Callable[[BusMessage], Awaitable[None]]


class Subscription(Protocol):
    async def unsubscribe(self) -> None:
        """Stop delivery; messages already queued may still be handled. Never
        raises: a bus that cannot tell its server logs why (the subscription is
        gone with the connection anyway)."""


class Bus(Protocol):
    async def start(self) -> None:
        """Connect (NATS) or get ready (memory)."""

    async def close(self) -> None:
        """Drain and disconnect."""

    async def publish(self, subject: str, data: bytes, reply: str | None = None) -> None:
        """Fire and forget (at most once); raises BusError if the bus cannot take it."""

    async def subscribe(
        self, subject: str, handler: Handler, queue: str | None = None
    ) -> Subscription:
        """Deliver messages on ``subject`` (wildcards allowed) to ``handler``.
        With ``queue``, each message goes to one member of the queue group."""

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """Publish and wait for one reply; raises NoResponders or BusTimeout."""


def subject_matches(pattern: str, subject: str) -> bool:
    p_tokens = pattern.split(".")
    s_tokens = subject.split(".")
    for i, token in enumerate(p_tokens):
        if token == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (token != "*" and token != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)


BUSES: dict[str, str] = {
    "memory": "edgefleet.server.bus.memory:MemoryBus",
    "nats": "edgefleet.server.bus.nats:NatsBus",
    "tls": "edgefleet.server.bus.nats:NatsBus",
}


def create_bus(url: str, options: Mapping[str, Any] | None = None) -> Bus:
    """Pick the implementation by URL scheme and import it only then, so
    nats-py loads only when a NATS URL is given. ``options``: the NATS
    credentials and TLS files (see ``nats.NatsOptions``); unused in memory."""
    import importlib

    scheme = "memory" if url == "memory" else url.split("://", 1)[0]
    module_name, _, class_name = BUSES[scheme].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    bus: Bus = cls(url) if scheme == "memory" else cls(url, options)
    return bus
