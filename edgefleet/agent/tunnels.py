"""Streams the server opens to this device, by the header's ``kind``:

    exec        a command on the device or in a workload; stdin/stdout/stderr,
                TTY, resize, signals (see Channel framing below)
    logs        a job's service logs: JSON lines, optionally followed
    agent-logs  this agent's own log file, optionally followed
    tcp         a TCP connection to a workload's port (the app proxy,
                port-forward) or, for operators, to host:port on the device

No port is opened on the device: the agent connects to the service itself
and pipes bytes over the stream. A refusal (service not running, port
closed) is a stream refusal with a plain reason, which the server turns into
a 502/503 with that reason.

Channel framing for ``exec`` (each stream message = 1 channel byte + data)::

    0 stdin  server->agent      1 stdout agent->server     2 stderr agent->server
    3 control JSON, both ways: agent {"exit_code": n} | {"error": "..."};
                               server {"resize": [cols, rows]} | {"signal": "INT"} | {"eof": true}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from edgefleet.agent.addresses import AddressBook
from edgefleet.agent.errors import AgentError, RuntimeFailure
from edgefleet.agent.execs import ExecRequest, ExecSession, HostExec
from edgefleet.agent.part import AgentContext, StreamHandler
from edgefleet.agent.runtimes.base import LogLine, Runtime
from edgefleet.agent.runtimes.capabilities import CanExecInteractive
from edgefleet.wire.mux import BULK_FRAME, MAX_FRAME, Stream, StreamError

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, CONTROL = 0, 1, 2, 3
CONNECT_TIMEOUT = 10.0
REMEMBERED_CONNECT_TIMEOUT = 3.0
"""A remembered address that does not answer this fast is looked up again
(the workload may have moved); the fresh one gets :data:`CONNECT_TIMEOUT`."""


def control(payload: dict[str, Any]) -> bytes:
    return bytes([CONTROL]) + json.dumps(payload).encode()


class Tunnels:
    """The part serving the streams above (:meth:`stream_handlers`)."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.addresses = AddressBook(ctx.jobs)
        self.handlers: dict[str, StreamHandler] = {
            "exec": self.exec,
            "logs": self.logs,
            "agent-logs": self.agent_logs,
            "tcp": self.tcp,
        }

    def stream_handlers(self) -> Mapping[str, StreamHandler]:
        return self.handlers

    # -- exec -----------------------------------------------------------------------------

    async def exec(self, stream: Stream) -> None:
        header = stream.header
        argv = [str(a) for a in header.get("command") or []]
        if not argv:
            await stream.refuse("command is empty")
            return
        tty = bool(header.get("tty"))
        cols, rows = int(header.get("cols") or 80), int(header.get("rows") or 24)
        env = {str(k): str(v) for k, v in (header.get("env") or {}).items()}
        try:
            session = await self._start_exec(header, ExecRequest(argv, env, tty, cols, rows))
        except (AgentError, OSError) as exc:
            await stream.refuse(getattr(exc, "message", None) or str(exc))
            return
        await stream.accept({})
        timeout = float(header.get("timeout") or 0)
        feeder = asyncio.create_task(self._feed(stream, session))
        try:
            pump = self._pump(stream, session)
            if timeout:
                try:
                    await asyncio.wait_for(pump, timeout)
                except TimeoutError:
                    await session.interrupt("KILL")
                    await stream.send(control({"error": f"timed out after {timeout:g} s"}))
            else:
                await pump
            code = await session.wait()
            await stream.send(control({"exit_code": code}))
            await stream.close()
        except StreamError:
            await session.interrupt("KILL")
        finally:
            feeder.cancel()

    async def _start_exec(self, header: dict[str, Any], request: ExecRequest) -> ExecSession:
        job, service = header.get("job"), header.get("service")
        if job:
            workload, runtime = await self.ctx.jobs.find_workload(str(job), str(service))
            if not isinstance(runtime, CanExecInteractive):
                raise RuntimeFailure(f"the {runtime.name} runtime cannot run commands in workloads")
            return await runtime.exec_session(workload.id, request)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        if request.tty:
            base_env.setdefault("TERM", "xterm-256color")
        try:
            return await HostExec.start(
                request.argv,
                env={**base_env, **request.env},
                cwd=header.get("cwd"),
                tty=request.tty,
                cols=request.cols,
                rows=request.rows,
            )
        except FileNotFoundError as exc:
            raise RuntimeFailure(f"{request.argv[0]}: command not found") from exc

    async def _pump(self, stream: Stream, session: ExecSession) -> None:
        while (chunk := await session.read()) is not None:
            channel, data = chunk
            for start in range(0, len(data), MAX_FRAME - 1):
                await stream.send(bytes([channel]) + data[start : start + MAX_FRAME - 1])

    async def _feed(self, stream: Stream, session: ExecSession) -> None:
        with contextlib.suppress(StreamError):
            while (message := await stream.recv()) is not None:
                if not message:
                    continue
                channel, data = message[0], message[1:]
                if channel == STDIN:
                    await session.write(data)
                elif channel == CONTROL:
                    request = json.loads(data or b"{}")
                    if "resize" in request:
                        cols, rows = request["resize"]
                        await session.resize(int(cols), int(rows))
                    if "signal" in request:
                        await session.interrupt(str(request["signal"]))
                    if request.get("eof"):
                        await session.close_stdin()
            await session.close_stdin()

    # -- logs -----------------------------------------------------------------------------

    async def logs(self, stream: Stream) -> None:
        header = stream.header
        jobs = self.ctx.jobs
        job_id = str(header.get("job"))
        wanted = header.get("service")
        assignment = jobs.assignments().get(job_id)
        if assignment is None:
            await stream.refuse(f"job {job_id} does not run on this device")
            return
        services = [wanted] if wanted else sorted(assignment.spec.services)
        if wanted and wanted not in assignment.spec.services:
            await stream.refuse(f"job {job_id} has no service {wanted!r}")
            return
        targets: list[tuple[str, str, Runtime]] = []
        for service in services:
            try:
                workload, runtime = await jobs.find_workload(job_id, str(service))
            except RuntimeFailure:
                continue
            targets.append((str(service), workload.id, runtime))
        await stream.accept({"services": [t[0] for t in targets]})
        tail = header.get("tail")
        since = datetime.fromisoformat(header["since"]) if header.get("since") else None
        follow = bool(header.get("follow"))
        lock = asyncio.Lock()

        async def one(service: str, workload_id: str, runtime: Runtime) -> None:
            async for line in runtime.logs(
                workload_id,
                tail=int(tail) if tail is not None else None,
                since=since,
                follow=follow,
            ):
                async with lock:
                    await stream.send(_line(service, line))

        tasks = [asyncio.create_task(one(*t)) for t in targets]
        closer = asyncio.create_task(_until_closed(stream))
        try:
            if tasks:
                gathered: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*tasks))
                waiting: list[asyncio.Future[Any]] = [gathered, closer]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not closer.done():
                await stream.close()
        except StreamError:
            pass
        finally:
            for task in [*tasks, closer]:
                task.cancel()

    async def agent_logs(self, stream: Stream) -> None:
        path = self.ctx.settings.state_dir / "agent.log"
        await stream.accept({})
        tail = stream.header.get("tail")
        follow = bool(stream.header.get("follow"))
        closer = asyncio.create_task(_until_closed(stream))
        try:
            await self._send_file_lines(
                stream, path, int(tail) if tail is not None else 200, follow, closer
            )
            if not closer.done():
                await stream.close()
        except StreamError:
            pass
        finally:
            closer.cancel()

    async def _send_file_lines(
        self, stream: Stream, path: Path, tail: int, follow: bool, closer: asyncio.Task[None]
    ) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        offset = len(data)
        for text in data.decode(errors="replace").splitlines()[-tail:] if tail > 0 else []:
            await stream.send(json.dumps({"text": text}).encode())
        while follow and not closer.done():
            await asyncio.sleep(0.25)
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size < offset:
                offset = 0  # rotated
            if size == offset:
                continue
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            head, newline, _ = chunk.rpartition(b"\n")
            if not newline:
                continue
            offset += len(head) + 1
            for text in head.decode(errors="replace").split("\n"):
                await stream.send(json.dumps({"text": text}).encode())

    # -- tcp ------------------------------------------------------------------------------

    async def tcp(self, stream: Stream) -> None:
        header = stream.header
        port = int(header.get("port") or 0)
        if not 0 < port < 65536:
            await stream.refuse(f"invalid port {header.get('port')!r}")
            return
        try:
            host, reader, writer = await self._connect(header, port)
        except Refusal as exc:
            await stream.refuse(exc.reason)
            return
        await stream.accept({"address": f"{host}:{port}"})
        await pipe(stream, reader, writer)

    async def _connect(
        self, header: dict[str, Any], port: int
    ) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the stream's target; a workload's remembered address
        (:mod:`edgefleet.agent.addresses`) that fails is looked up once more."""
        if header.get("target") == "host":
            host = str(header.get("host") or "127.0.0.1")
            return host, *await _open(host, port, f"device port {host}", CONNECT_TIMEOUT)
        job_id, service = str(header.get("job")), str(header.get("service"))
        what = f"service {service} of job {job_id}"
        try:
            host, remembered = await self.addresses.find(job_id, service)
            if remembered:
                try:
                    return host, *await _open(host, port, what, REMEMBERED_CONNECT_TIMEOUT)
                except Refusal:
                    self.addresses.forget(job_id, service)
                    host, _ = await self.addresses.find(job_id, service)
        except (AgentError, OSError) as exc:
            raise Refusal(getattr(exc, "message", None) or str(exc)) from exc
        return host, *await _open(host, port, what, CONNECT_TIMEOUT)


class Refusal(Exception):
    """Why a ``tcp`` stream is refused (its ``reason`` goes to the server as is)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _open(
    host: str, port: int, what: str, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        raise Refusal(f"{what}: connecting to port {port} timed out") from None
    except OSError as exc:
        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        raise Refusal(f"{what}: {reason} on port {port}") from None


async def pipe(stream: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes both ways until both sides are done; half-closes propagate."""

    async def upstream() -> None:
        with contextlib.suppress(StreamError, OSError):
            while (chunk := await stream.recv()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    async def downstream() -> None:
        # bytes, no message boundaries: the largest frames the link carries
        with contextlib.suppress(StreamError, OSError):
            while data := await reader.read(BULK_FRAME):
                await stream.send(data, BULK_FRAME)
            await stream.close()

    up, down = asyncio.create_task(upstream()), asyncio.create_task(downstream())
    try:
        await asyncio.gather(up, down)
    finally:
        for task in (up, down):
            task.cancel()
        writer.close()
        with contextlib.suppress(OSError):  # the service already hung up
            await writer.wait_closed()


async def _until_closed(stream: Stream) -> None:
    """Returns when the server side goes away (client disconnected)."""
    with contextlib.suppress(StreamError):
        while await stream.recv() is not None:
            pass


def _line(service: str, line: LogLine) -> bytes:
    payload = {
        "service": service,
        "stream": line.stream,
        "time": line.time.isoformat() if line.time else None,
        "text": line.text[: MAX_FRAME // 2],
    }
    return json.dumps(payload).encode()
