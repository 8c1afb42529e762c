"""The agent's one-shot commands, answered from typed args (issue 17): what the
server reads back, for known, unknown and malformed commands, on a real agent
context (tests/support/agents.py) and real processes for ``exec``."""

from __future__ import annotations

import json
from pathlib import Path

from edgefleet.agent.commands import CommandRunner
from edgefleet.wire.commands import EXEC, PING, ExecReply
from edgefleet.wire.messages import Command, CommandResult, decode
from tests.support.agents import agent_context


def _command(name: str, args: dict[str, object]) -> Command:
    """As the agent receives it: decoded from the server's JSON."""
    message = decode(
        json.dumps({"type": "command", "request_id": "r1", "name": name, "args": args})
    )
    assert isinstance(message, Command)
    return message


async def _answer(tmp_path: Path, name: str, args: dict[str, object]) -> CommandResult:
    runner = CommandRunner(await agent_context(tmp_path))
    result = await runner.answer(_command(name, args))
    assert result.request_id == "r1"
    received = decode(result.model_dump_json())  # as the server sees it
    assert isinstance(received, CommandResult)
    return received


async def test_exec_runs_the_command_and_answers_its_output(tmp_path: Path) -> None:
    result = await _answer(
        tmp_path, "exec", {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
    )
    assert result.ok, result.error
    assert EXEC.reply_of(result.result) == ExecReply(exit_code=3, stdout="out\n", stderr="err\n")


async def test_exec_clips_output_and_answers_a_missing_program_with_127(tmp_path: Path) -> None:
    clipped = await _answer(tmp_path, "exec", {"command": ["printf", "x" * 100], "max_output": 10})
    reply = EXEC.reply_of(clipped.result)
    assert reply.stdout == "x" * 10 and reply.truncated
    missing = await _answer(tmp_path, "exec", {"command": ["/no/such/program"]})
    assert EXEC.reply_of(missing.result).exit_code == 127


async def test_ping_and_refusals(tmp_path: Path) -> None:
    assert PING.reply_of((await _answer(tmp_path, "ping", {})).result).pong
    empty = await _answer(tmp_path, "exec", {"command": []})
    assert not empty.ok and empty.error == "command is empty"
    reboot = await _answer(tmp_path, "reboot", {})
    assert not reboot.ok and reboot.error == "reboot needs confirm: true"


async def test_an_unknown_command_or_bad_args_are_answered_not_dropped(tmp_path: Path) -> None:
    unknown = await _answer(tmp_path, "frobnicate", {"x": 1})
    assert not unknown.ok and unknown.error == "unknown command 'frobnicate'"
    bad = await _answer(tmp_path, "exec", {"command": "not a list"})
    assert not bad.ok and bad.error is not None
    assert bad.error.startswith("invalid args for 'exec': command:")
