"""What replicas say to each other on the bus: one pydantic model per message.

Every JSON body a replica publishes is an :class:`Envelope` here, encoded with
:meth:`Envelope.encode` and decoded with the ``read_*`` function of its subject,
so a malformed body fails at the boundary (:class:`EnvelopeError`) instead of
as a ``KeyError`` deep in a handler. The JSON is what replicas always sent, so a
rolling restart (replicas on two versions) keeps working; fields a newer replica
adds are ignored. Mux frames of bridged streams (``ef.stream.<sid>.h|r``) are
raw bytes, not envelopes.

::

    ef.device.<id>     deliver | command (request) | kick | superseded | open_stream (request)
        replies        CommandAnswered | CommandFailed;  StreamOpened
    ef.auth.changed    RightsChanged
    ef.fed.<cid>       FedForward
    ef.events.<p>      EventNotice
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, TypeAdapter, ValidationError
from pydantic.functional_validators import BeforeValidator

from edgefleet.fed.messages import FedMessage
from edgefleet.wire.commands import CommandArgs
from edgefleet.wire.messages import CommandResult, Message, ProtocolError, decode


class EnvelopeError(ValueError):
    """A bus body that is not the envelope its subject carries."""


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def encode(self) -> bytes:
        """The body to publish."""
        return self.model_dump_json().encode()


def _message(value: Any) -> Any:
    """A control message travels as its JSON object; it is decoded like a frame."""
    if isinstance(value, Message):
        return value
    try:
        return decode(json.dumps(value))
    except ProtocolError as exc:
        raise ValueError(str(exc)) from exc


# --- ef.device.<id>: to the replica holding the device's connection ---------------------


class Deliver(Envelope):
    """Send this control message to the device."""

    op: Literal["deliver"] = "deliver"
    message: Annotated[SerializeAsAny[Message], BeforeValidator(_message)]


class RunCommand(Envelope):
    """Run a command on the device (a bus request: the answer is the reply)."""

    op: Literal["command"] = "command"
    name: str
    args: SerializeAsAny[CommandArgs] = Field(default_factory=CommandArgs)
    timeout: float


class Kick(Envelope):
    """The device's credential is gone: tell its agent and drop the connection."""

    op: Literal["kick"] = "kick"
    reason: str = "revoked"


class Superseded(Envelope):
    """The device connected to the named replica and session: others drop theirs."""

    op: Literal["superseded"] = "superseded"
    replica: str = ""
    session: str = ""


class OpenStream(Envelope):
    """Bridge stream ``sid`` to the device (a bus request; see ``gateway/bridge``)."""

    op: Literal["open_stream"] = "open_stream"
    sid: str = Field(min_length=1)


DeviceEnvelope = Annotated[
    Deliver | RunCommand | Kick | Superseded | OpenStream, Field(discriminator="op")
]


class CommandAnswered(Envelope):
    """Reply to :class:`RunCommand`: the agent's answer."""

    result: CommandResult


class CommandFailed(Envelope):
    """Reply to :class:`RunCommand`: the holding replica could not get an answer."""

    error: str


class StreamOpened(Envelope):
    """Reply to :class:`OpenStream`: the holder is listening (or why not)."""

    ok: bool = True
    error: str = ""


# --- other subjects -----------------------------------------------------------------------


class RightsChanged(Envelope):
    """``ef.auth.changed``: these users' rights changed on ``replica``
    (``memberships``: their roles too); open requests are judged again."""

    users: list[int] = Field(default_factory=list)
    memberships: bool = False
    replica: str = ""


class EventNotice(Envelope):
    """``ef.events.<project pk | system>``: an event was recorded (live views show it).
    ``time`` is ISO 8601 in UTC with a ``Z``."""

    time: str
    project_pk: int | None = None
    kind: str
    device_id: str | None = None
    job_id: str | None = None
    actor: str | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class FedForward(Envelope):
    """``ef.fed.<cid>``: a party's message for the replica running the computation."""

    device: str
    payload: FedMessage


# --- decoding, one reader per subject ----------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Reader(Generic[T]):
    """Decodes the body of one subject (or one reply) into its envelope."""

    adapter: TypeAdapter[T]
    what: str

    def __call__(self, data: bytes) -> T:
        try:
            return self.adapter.validate_json(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise EnvelopeError(f"invalid {self.what} on the bus: {error['msg']}") from exc


read_device = Reader(TypeAdapter(DeviceEnvelope), "device envelope")
"""A body published on ``ef.device.<id>``."""
read_command_reply = Reader(TypeAdapter(CommandAnswered | CommandFailed), "command reply")
read_stream_opened = Reader(TypeAdapter(StreamOpened), "stream answer")
read_rights = Reader(TypeAdapter(RightsChanged), "rights change")
read_fed = Reader(TypeAdapter(FedForward), "federated message")
read_event = Reader(TypeAdapter(EventNotice), "event")
