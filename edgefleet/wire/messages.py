"""Control messages on the agent connection.

Every control message is a pydantic model with a literal ``type`` and travels
as one WebSocket *text* frame of JSON. Binary frames belong to the stream
multiplexer (:mod:`edgefleet.wire.mux`). Each side decodes with
:func:`decode` and dispatches through one table keyed by message class, so an
unknown or malformed message is rejected at the boundary instead of deep in a
handler.

Direction is part of the name's docstring, not of the type system: both sides
share one union so that a relay (the server's bus bridge) can carry any
message without knowing it.

Messages of an optional feature live in their own module, named in
:data:`LAZY_MESSAGES`, whose ``load()`` joins them to the union
(:func:`register`): an idle agent never loads the federated protocol's models;
the first ``fed`` frame it gets loads them (the server loads them at start).
The base class lives in :mod:`.base` and the collected data and datasets
messages in :mod:`.data`; both are re-exported here, with the union.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.base import Message as Message  # re-exported: the base of every message
from edgefleet.wire.commands import COMMANDS, CommandArgs, CommandReply
from edgefleet.wire.data import DATA_FILE_STREAM as DATA_FILE_STREAM
from edgefleet.wire.data import DataAck as DataAck
from edgefleet.wire.data import DataBacklog as DataBacklog
from edgefleet.wire.data import DataBatch as DataBatch
from edgefleet.wire.data import DataRecord as DataRecord
from edgefleet.wire.data import DatasetColumn as DatasetColumn
from edgefleet.wire.data import DatasetInfo as DatasetInfo
from edgefleet.wire.data import DatasetPrivacy as DatasetPrivacy
from edgefleet.wire.data import DatasetsReport as DatasetsReport
from edgefleet.wire.data import StreamBacklog as StreamBacklog
from edgefleet.wire.local import LocalAction, LocalAppFact
from edgefleet.wire.schedule import RunRecord
from edgefleet.wire.status import JobStatus
from edgefleet.wire.telemetry import MAX_LOG_LINES, MAX_SAMPLES, LogLine, Sample
from edgefleet.wire.upgrade import UpgradeReport
from edgefleet.wire.workload import JobAssignment

# Protocol versions (issue 18): the agent says which it speaks in its hello, the
# server accepts MIN_PROTOCOL_VERSION..PROTOCOL_VERSION and answers with the one
# both speak in its welcome, so a fleet on mixed versions keeps working while an
# upgrade rolls out. 2: welcome names the protocol; agents take `upgrade-agent`.
# 3: federated messages with a large part (masked input, share bundle and inbox)
# may travel as typed binary frames (edgefleet.fed.codec); below 3, JSON only.
PROTOCOL_VERSION = 3
FED_BINARY_PROTOCOL = 3
MIN_PROTOCOL_VERSION = 1


# --- facts the agent reports about its device ------------------------------------


class Resources(BaseModel):
    cpus: int = 0
    memory: int = Field(0, description="total memory in bytes")
    disk: int = Field(0, description="total bytes of the filesystem holding the state dir")
    disk_free: int = 0
    arch: str = ""
    os: str = ""
    kernel: str = ""
    hostname: str = ""


class Peripheral(BaseModel):
    kind: str = Field(description="camera | serial | gpu | wifi | declared")
    name: str
    path: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


class DeviceFacts(BaseModel):
    resources: Resources = Field(default_factory=Resources)
    runtimes: list[str] = Field(default_factory=list)
    peripherals: list[Peripheral] = Field(default_factory=list)
    agent_version: str = ""
    policy: DevicePolicy | None = Field(
        None,
        description="what the device's owner allows (process runtime, host paths, "
        "capabilities, limits...); none from an agent too old to report it",
    )
    upgrade: UpgradeReport | None = Field(
        None, description="the last over-the-air upgrade of the agent: done, or rolled back and why"
    )
    local_apps: list[LocalAppFact] = Field(
        default_factory=list,
        description="the owner's own apps on the device (agent apps run): read-only to the server",
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _older_policy(cls, value: Any) -> Any:
        """Older agents sent a dict, possibly empty; empty meant "reports nothing"."""
        return None if value == {} else value


# --- agent -> server ---------------------------------------------------------------


class Hello(Message):
    """agent -> server, first message after connecting: who I am and where I stand."""

    type: Literal["hello"] = "hello"
    protocol: int = PROTOCOL_VERSION
    facts: DeviceFacts
    applied_generation: int = 0
    runtime_healthy: bool = True
    jobs: list[JobStatus] = Field(default_factory=list)
    public_key: str | None = None


class Heartbeat(Message):
    """agent -> server, every heartbeat interval; cheap on purpose (10k/10 s)."""

    type: Literal["heartbeat"] = "heartbeat"
    applied_generation: int = 0
    runtime_healthy: bool = True


class FactsChanged(Message):
    """agent -> server, when resources, peripherals or runtimes change."""

    type: Literal["facts"] = "facts"
    facts: DeviceFacts


class JobStatusReport(Message):
    """agent -> server, one or more jobs changed state on the device."""

    type: Literal["job_status"] = "job_status"
    statuses: list[JobStatus]


class Applied(Message):
    """agent -> server, the desired state of this generation is in place."""

    type: Literal["applied"] = "applied"
    generation: int


class CommandResult(Message):
    """agent -> server, the answer to a :class:`Command`: the command's reply model
    (:mod:`edgefleet.wire.commands`) on the agent; on the server, the permissive
    base until :meth:`~edgefleet.wire.commands.CommandSpec.reply_of` types it
    (the answer does not name its command)."""

    type: Literal["command_result"] = "command_result"
    request_id: str
    ok: bool = True
    result: SerializeAsAny[CommandReply] = Field(default_factory=CommandReply)
    error: str | None = None


class ScheduleRuns(Message):
    """agent -> server: runs of periodic jobs the server has not acknowledged yet,
    oldest first (also those made while it was unreachable); answered by
    :class:`ScheduleRunsAck`. Bounded per message; the server bounds what it keeps."""

    type: Literal["schedule_runs"] = "schedule_runs"
    runs: list[RunRecord] = Field(default_factory=list, max_length=200)


class ScheduleRunsAck(Message):
    """server -> agent: these run ids are stored (or will never be: job gone);
    the agent drops them from its local log. Stored exactly once by id."""

    type: Literal["schedule_runs_ack"] = "schedule_runs_ack"
    ids: list[str] = Field(default_factory=list, max_length=200)


class LocalActions(Message):
    """agent -> server: what the device's owner did through the agent's local
    API while the server may have been away, oldest first; answered by
    :class:`LocalActionsAck`. The server stores each once (by id) as a device event."""

    type: Literal["local_actions"] = "local_actions"
    actions: list[LocalAction] = Field(default_factory=list, max_length=200)


class LocalActionsAck(Message):
    """server -> agent: these local action ids are stored; the agent forgets them."""

    type: Literal["local_actions_ack"] = "local_actions_ack"
    ids: list[str] = Field(default_factory=list, max_length=200)


class TelemetryBatch(Message):
    """agent -> server: buffered health samples of this device, oldest first
    (also those taken while the server was unreachable); answered by
    :class:`TelemetryAck`. Always about the sending device: it names no other."""

    type: Literal["telemetry"] = "telemetry"
    samples: list[Sample] = Field(default_factory=list, max_length=MAX_SAMPLES)


class TelemetryAck(Message):
    """server -> agent: every sample with ``seq <= upto`` is stored; the agent forgets them."""

    type: Literal["telemetry_ack"] = "telemetry_ack"
    upto: int = Field(ge=0)


class WorkloadLogs(Message):
    """agent -> server, in the background: the last lines of one service of a job,
    replacing what the server kept for it, so it can show them while the device
    is offline. Sent only when they changed."""

    type: Literal["workload_logs"] = "workload_logs"
    job: str = Field(max_length=64)
    service: str = Field(max_length=128)
    lines: list[LogLine] = Field(default_factory=list, max_length=MAX_LOG_LINES)


# --- server -> agent ---------------------------------------------------------------


class Welcome(Message):
    """server -> agent, answer to :class:`Hello`."""

    type: Literal["welcome"] = "welcome"
    device_id: str
    name: str
    project: str
    heartbeat_interval: float
    server_time: datetime
    replica: str = ""
    protocol: int | None = Field(
        None, description="the protocol version both sides speak; left out for protocol-1 agents"
    )

    @model_serializer(mode="wrap")
    def _without_protocol_for_v1(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A protocol-1 agent forbids unknown fields: the welcome it gets has none."""
        data: dict[str, Any] = handler(self)
        if data.get("protocol") is None:
            data.pop("protocol", None)
        return data


class DesiredState(Message):
    """server -> agent: the complete set of jobs this device should run.

    Always a full snapshot, never a delta: the agent can apply it after any
    gap, and an older snapshot (lower generation) arriving late is ignored.
    """

    type: Literal["desired"] = "desired"
    generation: int
    jobs: list[JobAssignment] = Field(default_factory=list)


class Command(Message):
    """server -> agent: do one thing now and answer with :class:`CommandResult`.

    ``args`` is validated into the named command's args model
    (:data:`edgefleet.wire.commands.COMMANDS`). A name this side does not know
    (a newer server's) or args that do not fit still decode, with
    :attr:`problem` saying why, so the agent can answer instead of dropping it.
    """

    type: Literal["command"] = "command"
    request_id: str
    name: str
    args: SerializeAsAny[CommandArgs] = Field(default_factory=CommandArgs)
    _problem: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _typed_args(self) -> Self:
        spec = COMMANDS.get(self.name)
        if spec is None:
            self._problem = f"unknown command {self.name!r}"
            return self
        try:
            self.args = spec.args_of(self.args)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            self._problem = f"invalid args for {self.name!r}: {where}: {error['msg']}"
        return self

    @property
    def problem(self) -> str | None:
        """Why this command cannot run here (unknown name, bad args), or None."""
        return self._problem


class Revoked(Message):
    """server -> agent: this device's credential is no longer valid. The agent exits."""

    type: Literal["revoked"] = "revoked"
    reason: str


_members: list[type[Message]] = [
    Hello,
    Heartbeat,
    FactsChanged,
    JobStatusReport,
    Applied,
    CommandResult,
    DatasetsReport,
    Welcome,
    DesiredState,
    Command,
    Revoked,
    DataBatch,
    DataAck,
    DataBacklog,
    ScheduleRuns,
    ScheduleRunsAck,
    LocalActions,
    LocalActionsAck,
    TelemetryBatch,
    TelemetryAck,
    WorkloadLogs,
]

LAZY_MESSAGES = {"fed": "edgefleet.wire.fed_relay"}
"""Message ``type`` -> the module defining it, loaded the first time one arrives."""


def _union(members: list[type[Message]]) -> TypeAdapter[Message]:
    union: Any = Union[tuple(members)]  # noqa: UP007 - built from a list at run time
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


_adapter = _union(_members)


def register(message: type[Message]) -> None:
    """Join a message class from an optional module to the union both sides decode."""
    global _adapter
    if message not in _members:
        _members.append(message)
        _adapter = _union(_members)


class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol version."""


def decode(text: str | bytes) -> Message:
    """Parse one text frame into its message class (loading the module of a
    :data:`LAZY_MESSAGES` type the first time one arrives)."""
    try:
        return _adapter.validate_json(text)
    except ValidationError as exc:
        module = _lazy_module(exc)
        if module is None:
            raise ProtocolError(f"invalid control message: {exc}") from exc
    importlib.import_module(module).load()
    return decode(text)


def _lazy_module(exc: ValidationError) -> str | None:
    """The not yet imported module of the message type ``exc`` did not know."""
    for error in exc.errors():
        if error["type"] == "union_tag_invalid":
            tag = str((error.get("ctx") or {}).get("tag", ""))
            return LAZY_MESSAGES.pop(tag, None)
    return None


def encode(message: Message) -> str:
    return message.model_dump_json(exclude_defaults=False)
