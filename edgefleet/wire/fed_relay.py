"""The federated computations' message on the agent connection.

:class:`FedRelay` is importable at no cost (an idle agent registers its handler
by this class), but its payload, :data:`edgefleet.fed.messages.FedMessage` with
the analytics behind it, is resolved only by :func:`load`: when the first
``fed`` frame arrives (:func:`edgefleet.wire.messages.decode` calls it), or
when a process that runs computations starts them (the server's relay). Until
then the class is not part of the union :func:`~edgefleet.wire.messages.decode`
parses, and an idle agent never loads ``edgefleet.fed.messages``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from edgefleet.wire.messages import Message, register

if TYPE_CHECKING:
    from edgefleet.fed.messages import FedMessage


class FedRelay(Message):
    """either way: one message of a federated computation
    (:mod:`edgefleet.fed.messages`). The server relays these between its aggregator
    and the devices' parties; it cannot read the shares or unmask an input."""

    type: Literal["fed"] = "fed"
    payload: FedMessage  # resolved by load()


def load() -> type[FedRelay]:
    """Resolve the payload's models and join :class:`FedRelay` to the union
    both sides decode. Idempotent; returns the class."""
    if not FedRelay.__pydantic_complete__:
        from edgefleet.fed.messages import FedMessage

        FedRelay.model_rebuild(_types_namespace={"FedMessage": FedMessage})
        register(FedRelay)
    return FedRelay
