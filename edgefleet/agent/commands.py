"""One-shot commands the server sends (:class:`~edgefleet.wire.messages.Command`).

Each handler takes the command's args and returns a result dict; an
exception becomes ``ok: false`` with its message. Long-lived interaction
(TTY exec, log follow, proxying) uses streams instead (:mod:`tunnels`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from edgefleet.agent.errors import AgentError
from edgefleet.agent.runtimes.capabilities import CanExec
from edgefleet.wire.messages import Command, CommandResult

if TYPE_CHECKING:
    from edgefleet.agent.agent import Agent

log = logging.getLogger("edgefleet.agent")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
DEFAULT_OUTPUT_LIMIT = 1024 * 1024


class CommandError(AgentError):
    pass


def _clip(data: bytes, limit: int) -> tuple[str, bool]:
    truncated = len(data) > limit
    return data[:limit].decode(errors="replace"), truncated


class CommandRunner:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.handlers: dict[str, Handler] = {
            "ping": self.ping,
            "exec": self.exec,
            "workload-exec": self.workload_exec,
            "identify": self.identify,
            "restart-agent": self.restart_agent,
            "reboot": self.reboot,
        }

    async def run(self, command: Command) -> None:
        handler = self.handlers.get(command.name)
        if handler is None:
            result = CommandResult(
                request_id=command.request_id, ok=False, error=f"unknown command {command.name!r}"
            )
        else:
            try:
                result = CommandResult(
                    request_id=command.request_id, result=await handler(command.args)
                )
            except Exception as exc:
                message = (
                    exc.message if isinstance(exc, AgentError) else str(exc) or type(exc).__name__
                )
                result = CommandResult(request_id=command.request_id, ok=False, error=message)
        if self.agent.connection is not None:
            await self.agent.connection.send(result)

    async def ping(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"pong": True}

    async def exec(self, args: dict[str, Any]) -> dict[str, Any]:
        argv = [str(a) for a in args.get("command") or []]
        if not argv:
            raise CommandError("command is empty")
        timeout = float(args.get("timeout") or 30)
        limit = int(args.get("max_output") or DEFAULT_OUTPUT_LIMIT)
        env = {**os.environ, **{str(k): str(v) for k, v in (args.get("env") or {}).items()}}
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=args.get("cwd") or None,
                start_new_session=True,
            )
        except FileNotFoundError:
            return {
                "exit_code": 127,
                "stdout": "",
                "stderr": f"{argv[0]}: command not found",
                "timed_out": False,
            }
        except OSError as exc:
            return {
                "exit_code": 126,
                "stdout": "",
                "stderr": f"{argv[0]}: {exc}",
                "timed_out": False,
            }
        timed_out = False
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            out, err = await process.communicate()
        stdout, cut_out = _clip(out, limit)
        stderr, cut_err = _clip(err, limit)
        return {
            "exit_code": 124 if timed_out else process.returncode,
            "stdout": stdout,
            "stderr": stderr,
            "timed_out": timed_out,
            "truncated": cut_out or cut_err,
        }

    async def workload_exec(self, args: dict[str, Any]) -> dict[str, Any]:
        jobs = self.agent.jobs
        assert jobs is not None
        job_id, service = str(args["job"]), str(args["service"])
        argv = [str(a) for a in args.get("command") or []]
        timeout = float(args.get("timeout") or 30)
        limit = int(args.get("max_output") or DEFAULT_OUTPUT_LIMIT)
        workload, runtime = await jobs.find_workload(job_id, service)
        if not isinstance(runtime, CanExec):
            raise CommandError(f"the {runtime.name} runtime cannot run commands in workloads")
        try:
            code, out, err = await runtime.exec(
                workload.id, argv, dict(args.get("env") or {}), timeout
            )
        except TimeoutError:
            return {
                "exit_code": 124,
                "stdout": "",
                "stderr": f"timed out after {timeout:g} s",
                "timed_out": True,
            }
        stdout, cut_out = _clip(out, limit)
        stderr, cut_err = _clip(err, limit)
        return {
            "exit_code": code,
            "stdout": stdout,
            "stderr": stderr,
            "timed_out": False,
            "truncated": cut_out or cut_err,
        }

    async def identify(self, args: dict[str, Any]) -> dict[str, Any]:
        marker = str(args.get("message") or "identify requested")
        log.warning("*** IDENTIFY: %s ***", marker)
        blinked = False
        for led in ("/sys/class/leds/ACT/trigger", "/sys/class/leds/led0/trigger"):
            with contextlib.suppress(OSError):
                with open(led, "w") as handle:
                    handle.write("timer")
                blinked = True
        return {"logged": marker, "blinked": blinked}

    async def restart_agent(self, args: dict[str, Any]) -> dict[str, Any]:
        log.warning(
            "restart requested by the server; exiting so the service manager restarts the agent"
        )
        asyncio.get_running_loop().call_later(0.5, self.agent.request_restart)
        return {"restarting": True}

    async def reboot(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("confirm"):
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
        return {"rebooting": True}
