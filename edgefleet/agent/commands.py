"""One-shot commands the server sends (:class:`~edgefleet.wire.messages.Command`).

Each handler takes its command's args model and returns its reply model
(:mod:`edgefleet.wire.commands`); an unknown command or args that do not fit
are answered ``ok: false`` with the reason, and so is an exception. Long-lived interaction
(TTY exec, log follow, proxying) uses streams instead (:mod:`tunnels`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping

from edgefleet.agent.errors import AgentError
from edgefleet.agent.part import AgentContext, CommandHandler
from edgefleet.agent.runtimes.capabilities import CanExec
from edgefleet.wire.commands import (
    ActionArgs,
    ExecArgs,
    ExecReply,
    Identified,
    NoArgs,
    Pong,
    Rebooting,
    Restarting,
    WorkloadExecArgs,
)
from edgefleet.wire.messages import Command, CommandResult

log = logging.getLogger("edgefleet.agent")

Handler = CommandHandler


class CommandError(AgentError):
    pass


def _clip(data: bytes, limit: int) -> tuple[str, bool]:
    truncated = len(data) > limit
    return data[:limit].decode(errors="replace"), truncated


def _reply(
    code: int | None, out: bytes, err: bytes, limit: int, timed_out: bool = False
) -> ExecReply:
    """The exec answer, each stream clipped to ``limit`` bytes."""
    stdout, cut_out = _clip(out, limit)
    stderr, cut_err = _clip(err, limit)
    return ExecReply(
        exit_code=-1 if code is None else code,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        truncated=cut_out or cut_err,
    )


class CommandRunner:
    """The device's own commands, plus those the parts add (``extra``, e.g. the
    upgrade part's ``upgrade-agent``)."""

    def __init__(self, ctx: AgentContext, extra: Mapping[str, Handler] | None = None) -> None:
        self.ctx = ctx
        self.handlers: dict[str, Handler] = {
            "ping": self.ping,
            "exec": self.exec,
            "workload-exec": self.workload_exec,
            "identify": self.identify,
            "restart-agent": self.restart_agent,
            "reboot": self.reboot,
            **(extra or {}),
        }

    async def run(self, command: Command) -> None:
        await self.ctx.connection.send(await self.answer(command))

    async def answer(self, command: Command) -> CommandResult:
        """Run ``command`` and say how it went; never raises but for cancellation."""
        handler = self.handlers.get(command.name)
        problem = command.problem or (
            f"unknown command {command.name!r}" if handler is None else None
        )
        if problem is not None or handler is None:
            result = CommandResult(request_id=command.request_id, ok=False, error=problem)
        else:
            try:
                result = CommandResult(
                    request_id=command.request_id, result=await handler(command.args)
                )
            except AgentError as exc:  # the command's own refusal: the caller reads why
                result = CommandResult(request_id=command.request_id, ok=False, error=exc.message)
            except Exception as exc:
                # A bug, not a refusal: its traceback goes to the log once, and the
                # caller still gets an answer instead of waiting for its timeout.
                log.exception("command %s failed", command.name)
                error = str(exc) or type(exc).__name__
                result = CommandResult(request_id=command.request_id, ok=False, error=error)
        return result

    async def ping(self, args: NoArgs) -> Pong:
        return Pong()

    async def exec(self, args: ExecArgs) -> ExecReply:
        argv = args.command
        if not argv:
            raise CommandError("command is empty")
        timeout = args.timeout or 30
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **args.env},
                cwd=args.cwd or None,
                start_new_session=True,
            )
        except FileNotFoundError:
            return ExecReply(exit_code=127, stdout="", stderr=f"{argv[0]}: command not found")
        except OSError as exc:
            return ExecReply(exit_code=126, stdout="", stderr=f"{argv[0]}: {exc}")
        timed_out = False
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            out, err = await process.communicate()
        code = 124 if timed_out else process.returncode
        return _reply(code, out, err, args.max_output, timed_out=timed_out)

    async def workload_exec(self, args: WorkloadExecArgs) -> ExecReply:
        timeout = args.timeout or 30
        workload, runtime = await self.ctx.jobs.find_workload(args.job, args.service)
        if not isinstance(runtime, CanExec):
            raise CommandError(f"the {runtime.name} runtime cannot run commands in workloads")
        try:
            code, out, err = await runtime.exec(workload.id, args.command, args.env, timeout)
        except TimeoutError:
            stderr = f"timed out after {timeout:g} s"
            return ExecReply(exit_code=124, stdout="", stderr=stderr, timed_out=True)
        return _reply(code, out, err, args.max_output)

    async def identify(self, args: ActionArgs) -> Identified:
        marker = args.message or "identify requested"
        log.warning("*** IDENTIFY: %s ***", marker)
        blinked = False
        for led in ("/sys/class/leds/ACT/trigger", "/sys/class/leds/led0/trigger"):
            with contextlib.suppress(OSError):
                with open(led, "w") as handle:
                    handle.write("timer")
                blinked = True
        return Identified(logged=marker, blinked=blinked)

    async def restart_agent(self, args: ActionArgs) -> Restarting:
        log.warning(
            "restart requested by the server; exiting so the service manager restarts the agent"
        )
        asyncio.get_running_loop().call_later(0.5, self.ctx.request_restart, None)
        return Restarting()

    async def reboot(self, args: ActionArgs) -> Rebooting:
        if not args.confirm:
            raise CommandError("reboot needs confirm: true")
        log.warning("reboot requested by the server")
        process = await asyncio.create_subprocess_exec(
            "reboot", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise CommandError(
                f"reboot failed: {err.decode(errors='replace').strip() or process.returncode}"
            )
        return Rebooting()
