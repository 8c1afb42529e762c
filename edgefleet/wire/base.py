"""The base of every control message on the agent connection (a leaf module, so
that message modules can define their classes apart from the union in
:mod:`edgefleet.wire.messages`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """Base of every control message: strict about unknown fields on purpose,
    so that a typo in a new field fails loudly in tests instead of being dropped."""

    model_config = ConfigDict(extra="forbid")
