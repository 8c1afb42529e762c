"""Interactive exec sessions: a command with stdin, stdout/stderr, optional TTY.

One small protocol, :class:`ExecSession`, with two implementations: a host
process (device-level exec, and workloads of the process runtime) and a
Docker Engine exec (workloads in containers). :mod:`tunnels` carries either
over a stream without knowing which.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from edgefleet.agent.engine.execs import Execs, Hijacked

STDOUT, STDERR = 1, 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecRequest:
    """An interactive command as the server's exec stream asks for it; one value
    handed from the stream to the runtime to the session, so that the runtimes'
    ``exec_session`` and the sessions' ``start`` need not each spell it out."""

    argv: list[str]
    env: dict[str, str]
    tty: bool
    cols: int = 80
    rows: int = 24


class ExecSession(Protocol):
    async def read(self) -> tuple[int, bytes] | None:
        """Next output chunk as (channel, bytes); None once all output is read."""

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's stdin."""

    async def close_stdin(self) -> None:
        """No more input (EOF)."""

    async def resize(self, cols: int, rows: int) -> None:
        """Resize the TTY (no-op without one)."""

    async def interrupt(self, name: str) -> None:
        """Deliver a signal to the command (INT, TERM, KILL)."""

    async def wait(self) -> int:
        """Exit code, once the command ended."""


def _set_size(fd: int, cols: int, rows: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class HostExec:
    """A local process, with a pseudo-terminal when ``tty`` (so ``sh`` is
    interactive and Ctrl-C reaches the foreground job through the line
    discipline), or plain pipes otherwise."""

    def __init__(self, process: subprocess.Popen[bytes], master: int | None) -> None:
        self.process = process
        self.master = master
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=64)
        self._open = 0
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def start(
        cls,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str | None,
        tty: bool,
        cols: int = 80,
        rows: int = 24,
        user: tuple[int, int, list[int]] | None = None,
    ) -> HostExec:
        """``user`` (uid, gid, groups): run as that user, like the workload it enters."""
        ids: dict[str, Any] = (
            {"user": user[0], "group": user[1], "extra_groups": user[2]} if user else {}
        )
        if tty:
            master, slave = os.openpty()
            _set_size(slave, cols, rows)

            def controlling_tty() -> None:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            try:
                process = subprocess.Popen(  # noqa: ASYNC220 (a pty needs Popen's preexec_fn)
                    argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    env=env,
                    cwd=cwd,
                    preexec_fn=controlling_tty,
                    close_fds=True,
                    **ids,
                )
            finally:
                os.close(slave)
            session = cls(process, master)
            session._watch(master, STDOUT)
        else:
            process = subprocess.Popen(  # noqa: ASYNC220 (same reader machinery as the pty)
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,
                **ids,
            )
            session = cls(process, None)
            assert process.stdout is not None and process.stderr is not None
            session._watch(process.stdout.fileno(), STDOUT)
            session._watch(process.stderr.fileno(), STDERR)
        return session

    def _watch(self, fd: int, channel: int) -> None:
        os.set_blocking(fd, False)
        self._open += 1

        def readable() -> None:
            try:
                data = os.read(fd, 32 * 1024)
            except BlockingIOError:
                return
            except OSError:
                data = b""  # EIO: the pty's other side closed
            if data:
                try:
                    self.queue.put_nowait((channel, data))
                except asyncio.QueueFull:
                    # Backpressure: stop reading until the consumer catches up.
                    self._loop.remove_reader(fd)
                    self._loop.create_task(self._resume(fd, channel, data))
                return
            self._loop.remove_reader(fd)
            self._close_pipe(fd)
            self._open -= 1
            if self._open == 0:
                self.queue.put_nowait(None)

        self._loop.add_reader(fd, readable)

    def _close_pipe(self, fd: int) -> None:
        """An output pipe that reached its end is closed at once (the master of a
        pty is closed by :meth:`wait`): a device runs many sessions."""
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed and pipe.fileno() == fd:
                pipe.close()

    async def _resume(self, fd: int, channel: int, data: bytes) -> None:
        await self.queue.put((channel, data))
        self._open -= 1
        self._watch(fd, channel)

    async def read(self) -> tuple[int, bytes] | None:
        return await self.queue.get()

    async def write(self, data: bytes) -> None:
        if self.master is not None:
            fd = self.master
        elif self.process.stdin is not None and not self.process.stdin.closed:
            fd = self.process.stdin.fileno()
        else:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
                view = view[written:]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError:
                return

    async def close_stdin(self) -> None:
        if self.master is not None:
            await self.write(b"\x04")
        elif self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    async def resize(self, cols: int, rows: int) -> None:
        if self.master is not None:
            _set_size(self.master, cols, rows)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGWINCH)

    async def interrupt(self, name: str) -> None:
        sig = getattr(signal, f"SIG{name.upper().removeprefix('SIG')}", signal.SIGINT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    async def wait(self) -> int:
        code = await asyncio.to_thread(self.process.wait)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # a broken pipe on the way out
                self.process.stdin.close()
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        return code if code >= 0 else 128 - code

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class DockerExec:
    """An Engine API exec with a hijacked connection (Docker and Podman)."""

    def __init__(self, execs: Execs, exec_id: str, started: Hijacked, tty: bool) -> None:
        """``started``: the exec's connection, taken over from HTTP; closed at the end."""
        self.execs = execs
        self.exec_id = exec_id
        self.sock = started.sock
        self.tty = tty
        self._head = started.head  # output that came with the engine's answer
        self._buffer = b""
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def start(cls, execs: Execs, container: str, request: ExecRequest) -> DockerExec:
        tty = request.tty

        def open_exec() -> tuple[str, Hijacked]:
            exec_id = execs.create(
                container, request.argv, stdin=True, tty=tty, env=request.env or None
            )
            started = execs.start(exec_id, tty=tty)
            if tty:
                _resize(execs, exec_id, request.cols, request.rows)
            return exec_id, started

        exec_id, started = await asyncio.to_thread(open_exec)
        session = cls(execs, exec_id, started, tty)
        session.sock.setblocking(False)
        return session

    async def _recv(self) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        try:
            return bytes(await self._loop.sock_recv(self.sock, 64 * 1024))
        except OSError:
            return b""

    async def read(self) -> tuple[int, bytes] | None:
        if self.tty:
            data = await self._recv()
            return (STDOUT, data) if data else None
        while True:
            if len(self._buffer) >= 8:
                kind, size = self._buffer[0], struct.unpack(">I", self._buffer[4:8])[0]
                if len(self._buffer) >= 8 + size:
                    payload = self._buffer[8 : 8 + size]
                    self._buffer = self._buffer[8 + size :]
                    return (STDERR if kind == 2 else STDOUT, payload)
            data = await self._recv()
            if not data:
                return None
            self._buffer += data

    async def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            await self._loop.sock_sendall(self.sock, data)

    async def close_stdin(self) -> None:
        import socket

        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    async def resize(self, cols: int, rows: int) -> None:
        if self.tty:
            await asyncio.to_thread(_resize, self.execs, self.exec_id, cols, rows)

    async def interrupt(self, name: str) -> None:
        if self.tty and name.upper() in ("INT", "SIGINT"):
            await self.write(b"\x03")

    async def wait(self) -> int:
        for _ in range(100):
            info = await asyncio.to_thread(self.execs.inspect, self.exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                self._close()
                return int(code) if code is not None else -1
            await asyncio.sleep(0.05)
        return -1

    async def kill(self) -> None:
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):  # already gone with the connection
            self.sock.close()


def _resize(execs: Execs, exec_id: str, cols: int, rows: int) -> None:
    """Set an engine exec's TTY size (blocking). A size is a nicety: one the
    engine refuses (the command just ended) leaves the session as it is."""
    from edgefleet.agent.engine.errors import EngineError  # only with the docker runtime

    try:
        execs.resize(exec_id, rows=rows, cols=cols)
    except (EngineError, OSError) as exc:
        log.debug("exec %s: the engine refused a resize: %s", exec_id[:12], exc)
