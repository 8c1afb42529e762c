"""The data endpoint's own HTTP/1.1 reader (agent/data/connection.py), served
for real on 127.0.0.1 with the real data service behind it, spoken to over
raw sockets: what a malformed, oversized, slow, split or pipelined request
gets, keep-alive, hand-over of other requests to the h11 loop, and a hostile
workload (another job's token, a flood of pipelined requests)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from edgefleet.agent.data import commit as commit_module
from edgefleet.agent.data.connection import PAUSE_BYTES, encode, unusual
from edgefleet.agent.data.endpoint import MAX_BODY_BYTES, _answer, _answer_encoded
from edgefleet.agent.data.http import MAX_HEAD, Server
from edgefleet.agent.data.records import Stored
from edgefleet.agent.data.service import DataService, _loopback
from edgefleet.agent.http_server import error
from tests.support.agents import agent_context

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[DataService]:
    data = DataService(await agent_context(tmp_path))
    await data.start()
    yield data
    await data.stop()


@pytest.fixture
async def strict(service: DataService) -> AsyncIterator[tuple[DataService, Server, int]]:
    """A listener of the same service with short timeouts."""
    server = Server(service.handler, _loopback, service.fast, request_timeout=0.5, idle_timeout=1)
    port = await server.listen("127.0.0.1", 0)
    yield service, server, port
    await server.close()


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(1), 10) == b""


async def connect(
    service: DataService, port: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    url = urlsplit(service.url("j1"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port or url.port)
    return reader, writer, url.path


async def test_keep_alive_pipelining_and_a_body_split_across_packets(service: DataService) -> None:
    reader, writer, path = await connect(service)
    # Three requests in one packet: answered in order, on the same connection.
    writer.write(b"".join(post(f"{path}?stream=p", b'{"n": %d}' % n) for n in range(3)))
    answers = [await read_answer(reader) for _ in range(3)]
    assert [(s, json.loads(b)["seqs"]) for s, _, b in answers] == [
        (201, [1]),
        (201, [2]),
        (201, [3]),
    ]
    # One request in pieces: the head cut mid-line, the body cut mid-record.
    whole = post(f"{path}?stream=p", b'{"n": 3, "id": "split"}', "X-Extra: y")
    for cut in (whole[:20], whole[20 : len(whole) - 5], whole[len(whole) - 5 :]):
        writer.write(cut)
        await writer.drain()
        await asyncio.sleep(0.05)
    status, headers, body = await read_answer(reader)
    assert status == 201 and json.loads(body)["seqs"] == [4]
    assert headers["content-type"] == "application/json" and "connection" not in headers
    # Connection: close is honoured after the answer.
    writer.write(post(f"{path}?stream=p", b'{"n": 4}', "Connection: close"))
    status, headers, _ = await read_answer(reader)
    assert status == 201 and headers["connection"] == "close"
    assert await closed(reader)
    writer.close()
    assert service.buffer.pending == 5


async def test_a_lone_clients_requests_stop_at_a_close_and_at_its_eof(
    service: DataService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone client's requests, written by the loop itself (agent/data/commit.py):
    what it pipelined after a ``Connection: close`` is never stored, and a
    half-closed client still gets every answer before the close."""
    monkeypatch.setattr(commit_module, "INLINE_SECONDS", 10.0)  # quick, however busy this host
    reader, writer, path = await connect(service)
    for n in range(2):  # a lone request after a lone one: the loop writes it itself
        writer.write(post(f"{path}?stream=c", b'{"n": %d}' % n))
        assert (await read_answer(reader))[0] == 201
    writer.write(
        post(f"{path}?stream=c", b'{"n": 2}')
        + post(f"{path}?stream=c", b'{"n": 3}', "Connection: close")
        + post(f"{path}?stream=c", b'{"n": 4}')
    )
    answers = [await read_answer(reader) for _ in range(2)]
    assert [json.loads(b)["seqs"] for _, _, b in answers] == [[3], [4]]
    assert answers[1][1]["connection"] == "close" and await closed(reader)
    writer.close()
    assert service.buffer.pending == 4  # the request after the close: never stored
    reader, writer, path = await connect(service)
    writer.write(b"".join(post(f"{path}?stream=c", b'{"n": %d}' % n) for n in range(5, 8)))
    writer.write_eof()
    answers = [await read_answer(reader) for _ in range(3)]
    assert [json.loads(b)["seqs"] for _, _, b in answers] == [[5], [6], [7]]
    assert await closed(reader)
    writer.close()
    assert service.buffer.pending == 7


@pytest.mark.parametrize(
    ("request_bytes", "status", "words"),
    [
        (b"POST /v1/x\r\nHost: x\r\n\r\n", 400, "malformed request line"),
        (b"P@ST /v1/j/t HTTP/1.1\r\n\r\n", 400, "malformed request line"),
        (b"POST http://x/v1 HTTP/1.1\r\n\r\n", 400, "is not a path"),
        (b"POST /v1/j/t HTTP/2.0\r\n\r\n", 505, "HTTP/1.1"),
        (b"POST /v1/j/t HTTP/1.1\r\nbad header\r\n\r\n", 400, "malformed header line"),
        (b"POST /v1/j/t HTTP/1.1\r\n folded: x\r\n\r\n", 400, "malformed header line"),
        (b"POST /v1/j/t HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "not a number"),
        (
            b"POST /v1/j/t HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
            "two different Content-Length",
        ),
        (b"POST /v1/j/t HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431, "head over"),
        (b"POST /v1/j/t HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, 431, "head over"),
        (
            b"POST /v1/j/t HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1),
            413,
            "over the limit",
        ),
    ],
)
async def test_a_malformed_or_oversized_request_is_refused_by_name_and_closed(
    service: DataService, request_bytes: bytes, status: int, words: str
) -> None:
    reader, writer, _ = await connect(service)
    writer.write(request_bytes)
    answer, _, body = await read_answer(reader)
    assert (answer, status) == (status, answer) and words in json.loads(body)["error"]
    assert await closed(reader)
    writer.close()
    assert service.buffer.pending == 0


async def answers(reader: asyncio.StreamReader, within: float = 2.0) -> list[tuple[int, str]]:
    """Every answer that comes within ``within`` seconds: (status, body)."""
    got: list[tuple[int, str]] = []
    with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError):
        while True:
            status, _, body = await asyncio.wait_for(read_answer(reader), within)
            got.append((status, body.decode()))
    return got


@pytest.mark.parametrize(
    ("head", "status", "words", "stored"),
    [
        # A Content-Length behind a bare LF: h11 reads it (and the body) as one
        # request; read as a Host value it would leave the body as a second one.
        (b"Host: x\nContent-Length: 8", 201, '"seqs": [1]', 1),
        (b"Host: x\rContent-Length: 8", 400, "illegal header line", 0),
        (b"Host: x\x00y\r\nContent-Length: 8", 400, "illegal header line", 0),
        # ESC in a value: h11 lets it through, and so does the endpoint, through h11.
        (b"Host: x\r\nX: \x1b[31m\r\nContent-Length: 8", 201, '"seqs": [1]', 1),
        # Both framings: Transfer-Encoding wins in h11, so the 8 bytes are the
        # start of a chunked body (no chunk-size line yet: no answer, nothing stored).
        (b"Host: x\r\nContent-Length: 8\r\nTransfer-Encoding: chunked", 0, "", 0),
        (b"Host: x\r\nContent-Length: 8, 8", 400, "is not a number", 0),
        (b"Host: x\r\nContent-Length : 8", 400, "malformed header line", 0),
        (b"Host: x\r\nContent-Length: +8", 400, "is not a number", 0),
        (b"Host: x\r\nContent-Length: \xd9\xa8", 400, "is not a number", 0),
    ],
)
async def test_a_head_h11_would_read_otherwise_is_read_by_h11_not_smuggled(
    service: DataService, head: bytes, status: int, words: str, stored: int
) -> None:
    """Request smuggling: a head this reader could frame differently from h11
    (a bare CR or LF, a control character, two framings, a length that is not
    plain digits) is refused or handed to h11 with all its bytes, so the body
    is never read as a request of its own."""
    reader, writer, path = await connect(service)
    writer.write(b'POST %s HTTP/1.1\r\n%s\r\n\r\n{"n": 1}' % (path.encode(), head))
    got = await answers(reader)
    writer.close()
    if status:
        assert len(got) == 1 and got[0][0] == status and words in got[0][1], got
    else:
        assert got == []
    assert service.buffer.pending == stored


async def test_a_slow_client_gets_408_and_an_idle_one_is_closed(
    strict: tuple[DataService, Server, int],
) -> None:
    service, server, port = strict
    reader, writer, path = await connect(service, port)
    whole = post(path, b'{"n": 1}')
    answered = asyncio.Event()

    async def trickle() -> None:  # one byte every 50 ms: never done within 0.5 s
        for byte in whole:
            if answered.is_set():
                return
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    status, _, body = await read_answer(reader)
    answered.set()
    await trickling
    assert status == 408 and "took over 0.5 s" in json.loads(body)["error"]
    assert await closed(reader)
    writer.close()
    idle_reader, idle_writer, _ = await connect(service, port)
    idle_writer.write(post(path, b'{"n": 2}'))
    assert (await read_answer(idle_reader))[0] == 201
    started = asyncio.get_running_loop().time()
    assert await closed(idle_reader)  # no request after the first: closed after ~1 s
    assert 0.5 < asyncio.get_running_loop().time() - started < 5
    idle_writer.close()
    assert not server.connections and service.buffer.pending == 1


async def test_other_requests_are_handed_to_the_h11_loop_mid_connection(
    service: DataService,
) -> None:
    reader, writer, path = await connect(service)
    writer.write(post(f"{path}?stream=h", b'{"n": 1}'))
    assert (await read_answer(reader))[0] == 201
    # GET (the backlog) on the same connection: served by the h11 loop from here on.
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, _, body = await read_answer(reader)
    assert status == 200 and json.loads(body)["streams"][0]["pending"] == 1
    # Chunked records, then a plain POST again, still answered.
    writer.write(
        f"POST {path}?stream=h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + b'4\r\n{"n"\r\n4\r\n: 2}\r\n0\r\n\r\n'
    )
    status, _, body = await read_answer(reader)
    assert status == 201 and json.loads(body)["seqs"] == [2]
    writer.write(post(f"{path}?stream=h", b'{"n": 3}'))
    status, _, body = await read_answer(reader)
    assert status == 201 and json.loads(body)["seqs"] == [3]
    writer.close()


async def test_another_jobs_token_is_refused_and_stores_nothing(service: DataService) -> None:
    reader, writer, path = await connect(service)
    other = path.replace(service.token("j1"), service.token("j2"))
    writer.write(post(other, b'{"n": 1}') + post(path + "x", b'{"n": 1}'))
    for _ in range(2):
        status, _, body = await read_answer(reader)
        assert status == 404 and "unknown job or token" in json.loads(body)["error"]
    writer.write(post(path, b'{"n": 1}'))  # still served after the refusals
    assert (await read_answer(reader))[0] == 201
    writer.close()
    assert service.buffer.pending == 1 and service.buffer.stats()[0].job == "j1"


async def test_a_flood_of_pipelined_requests_is_held_within_bounds(service: DataService) -> None:
    """A workload that floods requests (another job's token) and never reads
    the answers: what the agent holds for it, read and unanswered, stays
    bounded (it stops reading), and it is all answered, in order, once the
    workload reads."""
    url = urlsplit(service.url("j1"))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers back up at once
    sock.connect(("127.0.0.1", url.port or 0))
    reader, writer = await asyncio.open_connection(sock=sock)
    other = url.path.replace(service.token("j1"), service.token("j2"))
    tiny = post(other, b"{}")
    flood = 40_000
    assert len(tiny) * flood > 8 * PAUSE_BYTES
    held = [0]

    def holding() -> int:
        conns = [c for s in service._listeners.values() for c in s.connections]
        return sum(len(c.buf) + c.transport.get_write_buffer_size() for c in conns if c.transport)

    async def send() -> None:
        for _ in range(flood // 1000):
            writer.write(tiny * 1000)
            await writer.drain()

    sender = asyncio.create_task(send())
    for _ in range(100):  # 1 s with nobody reading the answers
        held[0] = max(held[0], holding())
        await asyncio.sleep(0.01)
    # Answered as read, the flood would leave some 4 MB of answers held here.
    assert 0 < held[0] <= PAUSE_BYTES + 512 * 1024
    statuses = [(await read_answer(reader))[0] for _ in range(flood)]
    await sender
    assert statuses == [404] * flood
    writer.write(post(url.path, b'{"n": 1}'))
    assert (await read_answer(reader))[0] == 201
    assert service.buffer.pending == 1
    writer.close()


async def test_the_query_is_read_as_the_h11_loop_reads_it(service: DataService) -> None:
    reader, writer, path = await connect(service)
    for query, stream in [
        ("stream=plain", "plain"),
        ("stream=a&stream=last", "last"),
        ("stream=%41b", "Ab"),
        ("stream=", "default"),
        ("other=1", "default"),
    ]:
        writer.write(post(f"{path}?{query}", b"{}"))
        status, _, body = await read_answer(reader)
        assert (status, json.loads(body)["stream"]) == (201, stream), query
    writer.write(post(f"{path}?stream=a+b", b"{}"))  # '+' is a space: not a stream name
    status, _, body = await read_answer(reader)
    assert status == 400 and "'a b'" in json.loads(body)["error"]
    writer.close()


@pytest.mark.parametrize(
    ("records", "stored"),
    [
        (1, Stored([7], 0)),
        (3, Stored([4, 5, 6], 0)),
        (2, Stored([1, 9], 1)),
        (2, Stored([3, 3], 2)),  # all there already: 200
    ],
)
@pytest.mark.parametrize("close", [False, True])
def test_a_records_answer_formatted_directly_is_the_json_answer_to_the_byte(
    records: int, stored: Stored, close: bool
) -> None:
    """The lean path formats its 2xx without json.dumps: the bytes must be the
    ones the JSON answer encodes to (what a workload parses, whichever path)."""
    direct = encode(_answer_encoded("temp.c-1_x", records, stored), close)
    general = encode(_answer("temp.c-1_x", records, stored), close)
    assert direct == general
    status, _, rest = direct.partition(b" ")[2].partition(b" ")
    assert int(status) == (201 if records > stored.duplicates else 200)
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["seqs"] == stored.seqs


def test_an_answers_head_lists_its_headers_and_close() -> None:
    answer = encode(error(507, "full", {"retry-after": "10"}), close=True)
    payload = b'{"error": "full", "status": 507}\n'
    assert answer == (
        b"HTTP/1.1 507 Insufficient Storage\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nretry-after: 10\r\nconnection: close\r\n\r\n%s"
        % (len(payload), payload)
    )


@pytest.mark.parametrize(
    ("head", "odd"),
    [
        (b"POST /v1/j/t HTTP/1.1\r\nHost: x\r\nContent-Length: 8", False),
        (b"POST /v1/j/t HTTP/1.1\r\nX-A: \ttab\xe9 latin-1", False),  # HTAB, high bytes: fine
        (b"POST /v1/j/t HTTP/1.1\nHost: x", True),  # a bare LF
        (b"POST /v1/j/t HTTP/1.1\rHost: x", True),  # a bare CR
        (b"POST /v1/j/t HTTP/1.1\r\r\nHost: x", True),  # CR CR LF: one CR is bare
        (b"POST /v1/j/t HTTP/1.1\n\r\nHost: x", True),  # LF CR LF: one LF is bare
        (b"POST /v1/j/t HTTP/1.1\r\nHost: x\r", True),  # a CR at the very end
        (b"\nPOST /v1/j/t HTTP/1.1", True),  # an LF at the very start
        (b"POST /v1/j/t HTTP/1.1\r\nHost: x\x00", True),
        (b"POST /v1/j/t HTTP/1.1\r\nHost: x\x7f", True),
        (b"POST /v1/j/t HTTP/1.1\r\nHost: x\x0b", True),
    ],
)
def test_a_bare_line_end_or_a_control_character_makes_a_head_unusual(
    head: bytes, odd: bool
) -> None:
    """What hands a connection to h11 (the smuggling test above sends each kind)."""
    assert unusual(head) is odd
