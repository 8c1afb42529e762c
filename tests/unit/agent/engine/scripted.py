"""A scripted engine for the client's tests: a unix socket that answers each
connection with raw bytes the real engines send only by chance (a chunked body
cut at odd places, a 101 with output right behind it, a body that stops
short), and keeps the raw requests it got, to read back what the client sent."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One connection's answer: the byte pieces, sent one by one (each its own send).
Answer = list[bytes]
HOLD = b"<hold the connection open until the client closes it>"  # as a last piece


def chunked(*pieces: bytes) -> bytes:
    """A chunked body of those pieces (with a chunk extension, as HTTP allows)."""
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def head(status: str, *headers: str) -> bytes:
    return (f"HTTP/1.1 {status}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


class ScriptedEngine:
    def __init__(self, path: Path, answers: list[Answer]) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.after: list[bytes] = []  # what the client wrote after its request (exec stdin)

    def _serve(self) -> None:
        for answer in self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by the test: fewer requests than answers
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head_part, _, body = request.partition(b"\r\n\r\n")
                for line in head_part.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        size = int(line.split(b":")[1])
                        while len(body) < size:
                            body += conn.recv(65536)
                self.requests.append(head_part + b"\r\n\r\n" + body)
                for piece in answer:
                    if piece is not HOLD:
                        conn.sendall(piece)
                if not answer or answer[-1] is not HOLD:
                    conn.shutdown(socket.SHUT_WR)
                conn.settimeout(2 if not answer or answer[-1] is not HOLD else 30)
                rest = b""
                try:
                    while data := conn.recv(65536):
                        rest += data
                except OSError:
                    pass
                self.after.append(rest)

    def request_lines(self, index: int = 0) -> list[str]:
        return self.requests[index].split(b"\r\n\r\n")[0].decode().split("\r\n")


@contextmanager
def scripted(tmp_path: Path, *answers: Answer) -> Iterator[ScriptedEngine]:
    engine = ScriptedEngine(tmp_path / "engine.sock", list(answers))
    engine.thread.start()
    try:
        yield engine
    finally:
        with contextlib.suppress(OSError):
            engine.sock.shutdown(socket.SHUT_RDWR)  # wakes a waiting accept()
        engine.sock.close()
        engine.thread.join(5)
