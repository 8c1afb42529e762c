"""Commands run inside a container through the Engine API (``/exec/...``).

Starting an exec takes over its HTTP connection (``Upgrade: tcp``; Docker
answers ``101``, Podman's compatible API ``101`` or ``200``): from then on the
socket carries the command's stdin one way and its output the other,
multiplexed (see :mod:`.streams`) unless the exec has a TTY. Closing our
side's writing half is the command's end of input.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefleet.agent.engine.errors import EngineUnreachable, api_error
from edgefleet.agent.engine.streams import collect
from edgefleet.agent.engine.transport import RECV, segment

if TYPE_CHECKING:
    from collections.abc import Iterator

    from edgefleet.agent.engine.session import EngineSession


@dataclass
class Hijacked:
    """A started exec's connection: ``head`` holds output read with the answer."""

    sock: socket.socket
    head: bytes


class Execs:
    def __init__(self, client: EngineSession) -> None:
        self.client = client

    def create(
        self,
        container: str,
        cmd: list[str],
        *,
        env: dict[str, str] | None = None,
        stdin: bool = False,
        tty: bool = False,
    ) -> str:
        """The new exec's id (it does not run until started)."""
        body: dict[str, Any] = {
            "AttachStdin": stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": tty,
            "Cmd": cmd,
            "Privileged": False,
            "User": "",
        }
        if env:
            body["Env"] = [f"{key}={value}" for key, value in env.items()]
        created = self.client.json("POST", f"/containers/{segment(container)}/exec", json_body=body)
        return str(created["Id"])

    def start(self, exec_id: str, *, tty: bool) -> Hijacked:
        """Start it; its connection, blocking, without a timeout (a session may idle)."""
        path = f"/exec/{segment(exec_id)}/start"
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        status, error, sock, head = self.client.transport.hijack(
            "POST", self.client.path(path), body=body
        )
        if status >= 400:
            raise api_error(status, error, f"POST {path}")
        return Hijacked(sock, head)

    def run(self, exec_id: str) -> tuple[bytes, bytes]:
        """Start an exec without stdin or TTY and read it to its end: (stdout, stderr)."""
        started = self.start(exec_id, tty=False)
        started.sock.settimeout(self.client.timeout)
        try:
            return collect(read_to_end(started, self.client.url))
        finally:
            started.sock.close()

    def inspect(self, exec_id: str) -> Any:
        """``Running``, ``ExitCode``..."""
        return self.client.json("GET", f"/exec/{segment(exec_id)}/json")

    def resize(self, exec_id: str, *, rows: int, cols: int) -> None:
        params = {"h": rows, "w": cols}
        self.client.call("POST", f"/exec/{segment(exec_id)}/resize", params=params).read()


def read_to_end(started: Hijacked, url: str) -> Iterator[bytes]:
    """A started exec's output, from what came with the answer to the end."""
    yield started.head
    while True:
        try:
            data = started.sock.recv(RECV)
        except OSError as exc:
            raise EngineUnreachable(f"reading an exec's output from {url}: {exc}") from exc
        if not data:
            return
        yield data
