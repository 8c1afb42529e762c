"""The base of every control message on the agent connection (a leaf module, so
that message modules can define their classes apart from the union in
:mod:`edgefleet.wire.messages`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """Base of every control message: strict about unknown fields on purpose,
    so that a typo in a new field fails loudly in tests instead of being dropped."""

    model_config = ConfigDict(extra="forbid")


def described(text: str) -> ConfigDict:
    """A model's description in its JSON schema, given where a docstring would
    be: ``-OO`` strips docstrings, and a model the agent's local OpenAPI
    document shows must keep its description under it. Used only by those models."""
    return ConfigDict(json_schema_extra={"description": text})
