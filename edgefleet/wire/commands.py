"""The one-shot commands a server sends an agent, each with typed args and reply.

A :class:`~edgefleet.wire.messages.Command` names one of :data:`COMMANDS`; its
``args`` are validated into that command's args model when the message is
decoded, and the agent answers a
:class:`~edgefleet.wire.messages.CommandResult` whose ``result`` the server
reads back with :meth:`CommandSpec.reply_of`::

    server                                         agent
    hub.command(dev, EXEC, ExecArgs(...)) --Command{name, args}-->  ExecArgs
    EXEC.reply_of(result) -> ExecReply  <--CommandResult{result}--  ExecReply

The JSON is what it always was (``{"name": "exec", "args": {...}}``), so a
fleet on mixed versions keeps working: args and replies ignore fields they do
not know (a newer peer may add some), and a command this agent does not know,
or args that do not fit, are answered ``ok: false`` with the reason rather than
dropped (see :attr:`~edgefleet.wire.messages.Command.problem`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgefleet.wire.upgrade import UpgradeOrder

DEFAULT_OUTPUT_LIMIT = 1024 * 1024
"""Bytes of stdout and of stderr an exec answers with unless told otherwise."""


class CommandArgs(BaseModel):
    """Args of a command. The base keeps every field it is given: it stands for
    the args of a command this side does not know, so nothing is lost on the way."""

    model_config = ConfigDict(extra="allow")


class CommandReply(BaseModel):
    """A command's answer. The base keeps every field it is given: the server
    decodes a reply before it knows which command it answers."""

    model_config = ConfigDict(extra="allow")


class _Args(CommandArgs):
    model_config = ConfigDict(extra="ignore")


class _Reply(CommandReply):
    model_config = ConfigDict(extra="ignore")


# --- args ------------------------------------------------------------------------------


class NoArgs(_Args):
    """``ping`` takes nothing."""


class ExecArgs(_Args):
    """``exec``: run ``command`` on the device itself, to completion."""

    command: list[str] = Field(default_factory=list)
    timeout: float = 30.0
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    max_output: int = DEFAULT_OUTPUT_LIMIT


class WorkloadExecArgs(ExecArgs):
    """``workload-exec``: run ``command`` inside one service of a job."""

    job: str
    service: str
    device: str = Field("", description="the device the caller named; the agent is that device")


class ActionArgs(_Args):
    """``identify``, ``restart-agent`` and ``reboot`` (which needs ``confirm``)."""

    confirm: bool = False
    message: str = ""


class UpgradeArgs(UpgradeOrder, _Args):
    """``upgrade-agent``: the release to install beside the running one."""


# --- replies ---------------------------------------------------------------------------


class Pong(_Reply):
    pong: bool = True


class ExecReply(_Reply):
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False


class Identified(_Reply):
    logged: str
    blinked: bool = False


class Restarting(_Reply):
    restarting: bool = True


class Rebooting(_Reply):
    rebooting: bool = True


class UpgradeAnswer(_Reply):
    """Accepted (installing in the background), or already on that version."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    accepted: bool
    already: bool = False
    version: str
    from_version: str = Field("", alias="from")


# --- the table -------------------------------------------------------------------------

A = TypeVar("A", bound=CommandArgs)
R = TypeVar("R", bound=CommandReply)


class ReplyError(ValueError):
    """An agent's reply that does not fit its command's reply model."""


@dataclass(frozen=True)
class CommandSpec(Generic[A, R]):
    """One command: its name on the wire and the models of its args and reply."""

    name: str
    args: type[A]
    reply: type[R]

    def args_of(self, raw: CommandArgs) -> A:
        """Validate args received as the permissive base into this command's model."""
        if isinstance(raw, self.args):
            return raw
        return self.args.model_validate(raw.model_dump())

    def reply_of(self, raw: CommandReply) -> R:
        """The typed reply, from what the agent sent (raises :class:`ReplyError`)."""
        if isinstance(raw, self.reply):
            return raw
        try:
            return self.reply.model_validate(raw.model_dump(by_alias=True))
        except ValidationError as exc:
            raise ReplyError(f"invalid {self.name!r} reply: {exc.errors()[0]['msg']}") from exc


PING = CommandSpec("ping", NoArgs, Pong)
EXEC = CommandSpec("exec", ExecArgs, ExecReply)
WORKLOAD_EXEC = CommandSpec("workload-exec", WorkloadExecArgs, ExecReply)
IDENTIFY = CommandSpec("identify", ActionArgs, Identified)
RESTART_AGENT = CommandSpec("restart-agent", ActionArgs, Restarting)
REBOOT = CommandSpec("reboot", ActionArgs, Rebooting)
UPGRADE_AGENT = CommandSpec("upgrade-agent", UpgradeArgs, UpgradeAnswer)

COMMANDS: dict[str, CommandSpec[Any, Any]] = {
    spec.name: spec
    for spec in (PING, EXEC, WORKLOAD_EXEC, IDENTIFY, RESTART_AGENT, REBOOT, UPGRADE_AGENT)
}
"""Every command of this protocol version, by its name on the wire."""
