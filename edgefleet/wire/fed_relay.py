"""The federated computations' message on the agent connection, kept apart from
:mod:`edgefleet.wire.messages` so that only a process taking part in a
computation loads the protocol's models (:mod:`edgefleet.fed.messages` and the
analytics behind it). Importing this module joins :class:`FedRelay` to the
union :func:`edgefleet.wire.messages.decode` parses; an agent's decoder does
that by itself when the first ``fed`` frame arrives.
"""

from __future__ import annotations

from typing import Literal

from edgefleet.fed.messages import FedMessage
from edgefleet.wire.messages import Message, register


class FedRelay(Message):
    """either way: one message of a federated computation
    (:mod:`edgefleet.fed.messages`). The server relays these between its aggregator
    and the devices' parties; it cannot read the shares or unmask an input."""

    type: Literal["fed"] = "fed"
    payload: FedMessage


register(FedRelay)
