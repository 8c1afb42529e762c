"""HTTP/1.1 to the container engine over its socket: one connection per request.

The engine listens on a unix socket (``unix:///run/podman/podman.sock``), or,
where its owner set it up so, on plain TCP (``tcp://host:2375``); TLS is not
spoken here (the docker SDK the agent used before was never given any). h11
does the framing, chunked bodies included; this module only moves bytes and
turns socket failures into :class:`~.errors.EngineUnreachable`.

A connection is opened per request and closed after it (``Connection:
close``): connecting to a local socket costs microseconds, and no pool means
no stale keep-alive connection and nothing shared between the worker threads
that call the engine. Blocking sockets, because every caller already runs in a
worker thread; a hijacked exec hands its socket to the event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urlencode

import h11

from edgefleet.agent.engine.errors import EngineError, EngineUnreachable

RECV = 64 * 1024
DEFAULT = -1.0  # a request's timeout: the transport's own
Body = bytes | IO[bytes] | None


@dataclass(frozen=True)
class Address:
    """Where the engine listens: a unix socket path, or a TCP host and port."""

    url: str
    path: str | None = None
    host: str = "localhost"
    port: int = 0

    @classmethod
    def parse(cls, url: str) -> Address:
        """``unix:///path``, a bare ``/path``, ``tcp://host:port`` or ``http://host:port``."""
        if url.startswith(("unix://", "/")):
            path = url.removeprefix("unix://")
            if not path:
                raise EngineError(f"{url!r}: no socket path")
            return cls(url, path=path)
        scheme, sep, rest = url.partition("://")
        if sep and scheme in ("tcp", "http"):
            host, _, port = rest.rstrip("/").rpartition(":")
            if not host or not port.isdigit():
                raise EngineError(f"{url!r}: expected {scheme}://host:port")
            return cls(url, host=host.strip("[]"), port=int(port))
        raise EngineError(
            f"{url!r}: the agent reaches a container engine through unix:// or tcp:// "
            "(plain HTTP); TLS and ssh:// are not supported"
        )


def query(params: dict[str, Any] | None) -> str:
    """A query string: booleans as 1/0, dicts and lists as JSON (filters,
    build args), None left out."""
    if not params:
        return ""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""


def segment(name: str) -> str:
    """One path segment (an id or a name, which may hold ``/`` or ``:``)."""
    return quote(name, safe="")


class Response:
    """An answer's status and headers; its body is read as it arrives."""

    def __init__(
        self, sock: socket.socket, conn: h11.Connection, head: h11.Response, url: str
    ) -> None:
        self.sock, self._conn, self.url = sock, conn, url
        self.closed = False  # by us: a reader then sees the end, not an error
        self.status = head.status_code
        self.headers = {k.decode().lower(): v.decode() for k, v in head.headers}

    def chunks(self) -> Iterator[bytes]:
        """The body, piece by piece (chunked or not), until it ends; then closes."""
        try:
            while True:
                event = self._conn.next_event()
                if event is h11.NEED_DATA:
                    self._conn.receive_data(_recv(self.sock, self.url))
                elif isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return
        except (h11.RemoteProtocolError, EngineUnreachable) as exc:
            if self.closed:
                return
            raise EngineError(f"the engine at {self.url} broke off its answer: {exc}") from exc
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        """Safe from another thread: a reader blocked on the socket wakes up."""
        self.closed = True
        with contextlib.suppress(OSError):  # not connected any more: nothing to wake
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _recv(sock: socket.socket, url: str) -> bytes:
    try:
        return sock.recv(RECV)
    except TimeoutError as exc:
        raise EngineUnreachable(f"the engine at {url} stopped answering (timed out)") from exc
    except OSError as exc:
        raise EngineUnreachable(f"the connection to the engine at {url} broke: {exc}") from exc


def _send_data(sock: socket.socket, data: bytes | None) -> None:
    if data:
        sock.sendall(data)


class Transport:
    """Requests to one engine; ``timeout`` bounds connecting and each wait for bytes."""

    def __init__(self, url: str, timeout: float | None = 120.0) -> None:
        self.address = Address.parse(url)
        self.timeout = timeout

    def _connect(self, timeout: float | None) -> socket.socket:
        address = self.address
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = address.path
        else:
            family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            target = (address.host, address.port)
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except FileNotFoundError as exc:
            sock.close()
            raise EngineUnreachable(
                f"no container engine at {address.url}: the socket does not exist"
            ) from exc
        except OSError as exc:
            sock.close()
            raise EngineUnreachable(f"no container engine answers at {address.url}: {exc}") from exc
        sock.settimeout(timeout)
        return sock

    def _send(
        self,
        sock: socket.socket,
        conn: h11.Connection,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Body,
    ) -> None:
        fields = [("Host", self.address.host), ("User-Agent", "edgefleet-agent"), *headers.items()]
        if isinstance(body, bytes):
            fields.append(("Content-Length", str(len(body))))
        elif body is not None:
            size = os.fstat(body.fileno()).st_size - body.tell()
            fields.append(("Content-Length", str(size)))
        try:
            sock.sendall(conn.send(h11.Request(method=method, target=target, headers=fields)))
        except OSError as exc:
            sock.close()
            raise EngineUnreachable(f"sending to the engine at {self.address.url}: {exc}") from exc
        try:
            if isinstance(body, bytes):
                _send_data(sock, conn.send(h11.Data(data=body)))
            elif body is not None:
                while piece := body.read(RECV):
                    _send_data(sock, conn.send(h11.Data(data=piece)))
            _send_data(sock, conn.send(h11.EndOfMessage()))
        except (BrokenPipeError, ConnectionResetError):
            # The engine answered (and closed) before it took the whole body, as it
            # may with an error: its answer says why, read it rather than the pipe.
            return

    def _head(self, sock: socket.socket, conn: h11.Connection) -> h11.Response:
        """Read up to the final answer's head (skipping ``100 Continue``); a ``101``
        is returned as a response too, for :meth:`hijack`."""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(_recv(sock, self.address.url))
                elif isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                    return h11.Response(status_code=200, headers=event.headers, reason=b"")
                elif isinstance(event, h11.Response):
                    return event
                elif isinstance(event, h11.ConnectionClosed):
                    raise EngineError(f"the engine at {self.address.url} closed without answering")
        except h11.RemoteProtocolError as exc:
            raise EngineError(f"the engine at {self.address.url} answered badly: {exc}") from exc
        except BaseException:
            sock.close()
            raise

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        timeout: float | None = DEFAULT,
    ) -> Response:
        """Send the request; the answer once its head arrived. ``timeout``: the
        transport's own unless given; None waits as long as it takes (log follow)."""
        sock = self._connect(self.timeout if timeout == DEFAULT else timeout)
        conn = h11.Connection(h11.CLIENT)
        self._send(sock, conn, method, target, {"Connection": "close", **(headers or {})}, body)
        return Response(sock, conn, self._head(sock, conn), self.address.url)

    def hijack(
        self, method: str, target: str, *, body: bytes
    ) -> tuple[int, bytes, socket.socket, bytes]:
        """A request that takes over its connection (an exec's stdin and output):
        (status, error body, socket, bytes already read from the stream). On an
        error status the socket is closed and the body is what the engine said."""
        sock = self._connect(self.timeout)
        conn = h11.Connection(h11.CLIENT)
        headers = {"Connection": "Upgrade", "Upgrade": "tcp", "Content-Type": "application/json"}
        self._send(sock, conn, method, target, headers, body)
        head = self._head(sock, conn)
        if head.status_code >= 400:
            answer = Response(sock, conn, head, self.address.url)
            return head.status_code, answer.read(), sock, b""
        # Switched (101) or a plain 200 whose body is the stream: from here on the
        # bytes are the exec's own, whatever h11 made of them.
        leftover, _closed = conn.trailing_data
        sock.settimeout(None)
        return head.status_code, b"", sock, bytes(leftover)
