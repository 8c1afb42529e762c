"""Typed commands (issue 17): each command's args and reply are models, while the
JSON between server and agent stays what mixed-version fleets already speak."""

from __future__ import annotations

import json

import pytest

from edgefleet.wire.commands import (
    COMMANDS,
    EXEC,
    IDENTIFY,
    UPGRADE_AGENT,
    WORKLOAD_EXEC,
    ActionArgs,
    CommandReply,
    ExecArgs,
    ExecReply,
    ReplyError,
    UpgradeAnswer,
    UpgradeArgs,
    WorkloadExecArgs,
)
from edgefleet.wire.messages import Command, CommandResult, decode, encode

SHA = "ab" * 32


def _sent(name: str, args: object) -> dict[str, object]:
    """What the server puts on the wire for this command (as JSON)."""
    return json.loads(encode(Command(request_id="r1", name=name, args=args)))


def test_the_json_of_every_command_the_server_sends_is_unchanged() -> None:
    exec_args = ExecArgs(command=["uname", "-a"], env={"A": "1"}, timeout=5)
    assert _sent("exec", exec_args) == {
        "type": "command",
        "request_id": "r1",
        "name": "exec",
        "args": {
            "command": ["uname", "-a"],
            "timeout": 5.0,
            "env": {"A": "1"},
            "cwd": None,
            "max_output": 1024 * 1024,
        },
    }
    workload = WorkloadExecArgs(command=["ls"], job="j1", service="web", device="d1")
    assert _sent("workload-exec", workload)["args"] == {
        "command": ["ls"], "timeout": 30.0, "env": {}, "cwd": None,
        "max_output": 1024 * 1024, "job": "j1", "service": "web", "device": "d1",
    }  # fmt: skip
    action = ActionArgs(confirm=True, message="hi")
    assert _sent("reboot", action)["args"] == {"confirm": True, "message": "hi"}
    order = UpgradeArgs(version="1.2.3", sha256=SHA, url="/w", size=10, attempt="u1")
    assert _sent("upgrade-agent", order)["args"] == {
        "version": "1.2.3", "sha256": SHA, "url": "/w", "size": 10,
        "deadline": 120.0, "attempt": "u1",
    }  # fmt: skip


def test_the_agent_receives_each_commands_own_args_model() -> None:
    for name, spec in COMMANDS.items():
        raw = {"command": ["true"], "job": "j", "service": "s", "version": "1.0",
               "sha256": SHA, "url": "/w", "size": 1}  # fmt: skip
        text = json.dumps({"type": "command", "request_id": "r", "name": name, "args": raw})
        command = decode(text)
        assert isinstance(command, Command)
        assert type(command.args) is spec.args, name
        assert command.problem is None, (name, command.problem)


def test_a_newer_servers_extra_args_are_ignored_and_older_args_get_defaults() -> None:
    text = json.dumps(
        {"type": "command", "request_id": "r", "name": "exec",
         "args": {"command": ["ls"], "new_knob": 3}}
    )  # fmt: skip
    command = decode(text)
    assert isinstance(command, Command) and isinstance(command.args, ExecArgs)
    assert command.problem is None
    assert command.args.timeout == 30 and command.args.max_output == 1024 * 1024
    assert "new_knob" not in command.args.model_dump()


def test_an_unknown_command_decodes_with_a_clear_problem_instead_of_failing() -> None:
    text = json.dumps(
        {"type": "command", "request_id": "r", "name": "frobnicate", "args": {"x": [1]}}
    )
    command = decode(text)
    assert isinstance(command, Command)
    assert command.problem == "unknown command 'frobnicate'"
    # kept as sent, so a relay re-encodes it unchanged
    assert json.loads(encode(command))["args"] == {"x": [1]}


def test_args_that_do_not_fit_are_a_problem_the_agent_can_answer() -> None:
    text = json.dumps(
        {"type": "command", "request_id": "r", "name": "upgrade-agent",
         "args": {"version": "../etc", "sha256": SHA, "url": "/w", "size": 1}}
    )  # fmt: skip
    command = decode(text)
    assert isinstance(command, Command)
    assert command.problem is not None
    assert command.problem.startswith("invalid args for 'upgrade-agent': version:")


def test_the_server_reads_a_reply_as_its_commands_model() -> None:
    sent = CommandResult(
        request_id="r", result=ExecReply(exit_code=0, stdout="ok", stderr="", truncated=True)
    )
    received = decode(encode(sent))
    assert isinstance(received, CommandResult)
    assert type(received.result) is CommandReply  # the answer does not name its command
    reply = EXEC.reply_of(received.result)
    assert reply == ExecReply(exit_code=0, stdout="ok", stderr="", truncated=True)
    assert WORKLOAD_EXEC.reply_of(received.result).stdout == "ok"


def test_an_older_agents_reply_without_newer_fields_still_reads() -> None:
    # before 0.x agents left "truncated" out of a command-not-found answer
    old = {"type": "command_result", "request_id": "r", "ok": True,
           "result": {"exit_code": 127, "stdout": "", "stderr": "x: not found", "timed_out": False}}  # fmt: skip
    received = decode(json.dumps(old))
    assert isinstance(received, CommandResult)
    assert EXEC.reply_of(received.result).truncated is False


def test_a_reply_that_does_not_fit_its_command_is_a_reply_error() -> None:
    received = decode(json.dumps({"type": "command_result", "request_id": "r",
                                  "result": {"stdout": "no exit code"}}))  # fmt: skip
    assert isinstance(received, CommandResult)
    with pytest.raises(ReplyError, match="invalid 'exec' reply"):
        EXEC.reply_of(received.result)
    assert IDENTIFY.reply_of(CommandReply.model_validate({"logged": "m"})).blinked is False


def test_the_upgrade_answer_keeps_its_from_field_on_the_wire() -> None:
    answer = UpgradeAnswer(accepted=True, version="2.0", from_version="1.0")
    wire = json.loads(encode(CommandResult(request_id="r", result=answer)))
    assert wire["result"]["from"] == "1.0" and "from_version" not in wire["result"]
    received = decode(json.dumps(wire))
    assert isinstance(received, CommandResult)
    assert UPGRADE_AGENT.reply_of(received.result).from_version == "1.0"
