"""What workloads may send to ``EDGEFLEET_DATA_URL``, and the answers they get.

    POST {url}?stream=NAME          one JSON object, or JSON lines (one object a line)
                                    -> 201 {"stream", "accepted", "duplicates", "seqs"}
                                       (200 when every record was already there)
    POST {url}/files?name=FILE      the raw bytes of one file -> 201 {"name", "seq", "size"}
    GET  {url}                      this job's backlog on the device
    GET  {url}/context              the device and the job (``EDGEFLEET_CONTEXT_URL``;
                                    see context.py)
    POST|DELETE|GET {url}/lock      take, release or look at the job's update lock
                                    -> {"job", "held", "since"} (see agent/changes/locks.py)

``url`` is ``http://HOST:PORT/v1/JOB/TOKEN``: TOKEN is an HMAC of the job id
under the agent's secret, so a workload can only write as its own job.

Limits (each refusal is a 4xx naming the line and the problem; nothing of a
refused request is stored, and nothing refused ever blocks the upload queue):

- a record: a JSON object, at most ``MAX_RECORD_BYTES`` (256 KiB) once
  compacted; NaN/Infinity are not JSON;
- a request: at most ``MAX_BODY_BYTES`` (16 MiB) and ``MAX_RECORDS`` lines;
- a stream name: 1-63 letters, digits, ``.``, ``_``, ``-`` (default ``default``);
- a record id (``X-Record-Id`` for a single record, or a string/integer
  ``"id"`` field): at most 128 characters; the same id in the same stream is
  stored once and answers with the first copy's seq;
- a file: at most ``MAX_FILE_BYTES`` (256 MiB) and the room left in the quota.

A full buffer answers 507 with ``Retry-After`` (backpressure), unless the
agent runs with ``--data-evict-oldest``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from edgefleet.agent.data.compact import compact_encoder
from edgefleet.agent.data.connection import Encoded, Reply
from edgefleet.agent.data.records import Incoming, Stored, record_size
from edgefleet.agent.http_server import HttpError, Request, Response, error

MAX_RECORD_BYTES = 256 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_RECORDS = 10_000
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_ID_CHARS = 128
STREAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")


class Store(Protocol):
    """What the endpoint needs from the data service."""

    def job_for(self, job: str, token: str) -> bool:
        """Whether ``token`` is this agent's token for ``job``."""

    async def store(self, incoming: Incoming) -> Stored:
        """Write durably (raises HttpError: 507 when the quota is full)."""

    def submit(
        self, incoming: Incoming, done: Callable[[Stored | HttpError], None], alone: bool = False
    ) -> None:
        """Write durably, then call ``done`` on the event loop, once, with the
        outcome: :meth:`store` without a future or a task (``alone``: no other
        connection's request can join its group commit; ``done`` may then be
        called before this returns)."""

    async def store_file(self, job: str, name: str, body: AsyncIterator[bytes], size: int) -> int:
        """Write a file durably; returns its seq."""

    async def backlog(self, job: str) -> dict[str, Any]:
        """This job's streams on the device."""

    async def context(self, job: str) -> dict[str, Any]:
        """The device and the job, as the job may see them (404 when the job
        is not on this device)."""

    async def lock(self, job: str, action: str) -> dict[str, Any]:
        """``take``, ``release`` or ``get`` the job's update lock."""


Record = tuple[str | None, str]  # (record id, compact JSON)
_UNREAD = object()  # the body is not one JSON value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every request: json.loads with an option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _parse(text: bytes) -> Any:
    """``json.loads``: UTF-8 unless a BOM or zero bytes say otherwise; a body
    that starts ``{`` and then a non-zero byte is UTF-8 (what
    ``json.detect_encoding`` answers for it, without its call)."""
    encoding = "utf-8" if text[:1] == b"{" and text[1:2] != b"\0" else json.detect_encoding(text)
    return _DECODER.decode(text.decode(encoding, "surrogatepass"))


# A number too large for a float (1e400) is read as infinity, which is not
# JSON: allow_nan=False refuses it here instead of storing ``Infinity``.
_compact = compact_encoder(allow_nan=False)


def _record_id(record: dict[str, Any]) -> str | None:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _checked(record: dict[str, Any], header_id: str | None, number: int, many: bool) -> Record:
    """One decoded object as ``(record id, compact JSON)``, or the HttpError
    naming its problem (``number``: its line, when the body has ``many``)."""
    try:
        text = _compact(record)
        size = record_size(text)  # a lone surrogate fails here: not UTF-8
    except ValueError as exc:  # a number read as infinity; a lone surrogate (not UTF-8)
        where = f"line {number}" if many else "the body"
        raise HttpError(400, f"{where} is not valid JSON: {exc}") from None
    if size > MAX_RECORD_BYTES:
        where = f"the record on line {number}" if many else "the record"
        raise HttpError(
            413, f"{where} is {size} bytes; the limit is {MAX_RECORD_BYTES} bytes per record"
        )
    rid = header_id if header_id is not None else _record_id(record)
    if rid is not None and len(rid) > MAX_ID_CHARS:
        raise HttpError(422, f"record id on line {number} is over {MAX_ID_CHARS} characters")
    return rid, text


def parse_records(body: bytes, header_id: str | None) -> list[tuple[str | None, str]]:
    """The body as ``(record id, compact JSON)`` pairs; raises HttpError naming
    the first problem. One JSON object (the usual body) is decoded once and
    checked without splitting the body into lines."""
    try:
        whole = _parse(body)
    except (ValueError, UnicodeDecodeError):
        whole = _UNREAD
    else:
        if type(whole) is dict:  # the decoder builds plain dicts
            return [_checked(whole, header_id, 1, False)]
    if not body.strip():
        raise HttpError(400, "empty body: send one JSON object, or JSON lines")
    records: list[tuple[str | None, str]] = []
    if whole is _UNREAD:
        lines = body.split(b"\n")
    elif isinstance(whole, list):
        raise HttpError(
            422, "the body is a JSON array: send one JSON object, or JSON lines (one a line)"
        )
    else:
        lines = [body]
    many = len(lines) > 1
    if many and header_id is not None:
        raise HttpError(
            400, 'X-Record-Id names a single record; for JSON lines give each an "id" field'
        )
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = whole if whole is not _UNREAD else _parse(line)
        except (ValueError, UnicodeDecodeError) as exc:
            where = f"line {number}" if many else "the body"
            raise HttpError(400, f"{where} is not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            where = f"line {number}" if many else "the body"
            raise HttpError(422, f"{where}: a record must be a JSON object, not {_kind(record)}")
        records.append(_checked(record, header_id, number, many))
        if len(records) > MAX_RECORDS:
            raise HttpError(413, f"more than {MAX_RECORDS} records in one request; split it")
    if not records:
        raise HttpError(400, "empty body: send one JSON object, or JSON lines")
    return records


def check_stream(name: str) -> str:
    if not STREAM_RE.match(name):
        raise HttpError(
            400,
            f"stream name {name!r} is invalid: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def make_handler(store: Store) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        job, rest = _job(store, parts), parts[3:]
        if not rest:
            if request.method == "POST":
                return await _records(store, job, request)
            if request.method == "GET":
                return Response(200, await store.backlog(job))
            raise HttpError(405, f"{request.method} is not allowed here: POST records")
        if rest == ["context"]:
            if request.method != "GET":
                raise HttpError(405, f"{request.method} is not allowed here: GET the context")
            return Response(200, await store.context(job))
        if rest == ["lock"]:
            action = {"POST": "take", "DELETE": "release", "GET": "get"}.get(request.method)
            if action is None:
                raise HttpError(405, "POST takes the update lock, DELETE releases it, GET shows it")
            return Response(200, await store.lock(job, action))
        if rest == ["files"]:
            if request.method != "POST":
                raise HttpError(405, "POST a file's bytes to files?name=NAME")
            return await _file(store, job, request)
        raise HttpError(
            404, f"no such path {'/'.join(rest)!r}: POST records, or files?name=, GET context"
        )

    return handle


def _job(store: Store, parts: list[str]) -> str:
    """The job of a URL's ``v1/JOB/TOKEN/...`` parts, if its token is right."""
    if len(parts) < 3 or parts[0] != "v1":
        raise HttpError(404, "not found: use the URL in $EDGEFLEET_DATA_URL")
    if not store.job_for(parts[1], parts[2]):
        raise HttpError(404, "unknown job or token: use the URL in $EDGEFLEET_DATA_URL")
    return parts[1]


def _answer(stream: str, records: int, stored: Stored) -> Response:
    accepted = records - stored.duplicates
    return Response(
        201 if accepted else 200,
        {
            "stream": stream,
            "accepted": accepted,
            "duplicates": stored.duplicates,
            "seqs": stored.seqs,
        },
    )


def _answer_encoded(stream: str, records: int, stored: Stored) -> Encoded:
    """:func:`_answer` for the lean connection: its body's very bytes as
    ``json.dumps`` writes them, formatted directly (a stream name matches
    ``STREAM_RE``, so it holds nothing JSON escapes)."""
    accepted = records - stored.duplicates
    return Encoded(
        201 if accepted else 200,
        b'{"stream": "%s", "accepted": %d, "duplicates": %d, "seqs": [%s]}\n'
        % (
            stream.encode(),
            accepted,
            stored.duplicates,
            b", ".join(b"%d" % seq for seq in stored.seqs),
        ),
    )


async def _records(store: Store, job: str, request: Request) -> Response:
    stream = check_stream(request.query.get("stream") or "default")
    body = await request.read(MAX_BODY_BYTES)
    records = parse_records(body, request.headers.get("x-record-id"))
    return _answer(stream, len(records), await store.store(Incoming(job, stream, records)))


class FastRecords:
    """``POST {url}?stream=NAME`` served on the connection itself
    (:class:`edgefleet.agent.data.connection.Fast`): the same checks and
    answers as :func:`make_handler`, with no task or future per request."""

    max_body = MAX_BODY_BYTES

    def __init__(self, store: Store) -> None:
        self.store = store

    def wants(self, method: str, path: str) -> bool:
        return method == "POST" and path.strip("/").count("/") == 2

    def handle(
        self,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        reply: Reply,
        alone: bool = False,
    ) -> None:
        job = _job(self.store, path.strip("/").split("/"))
        stream = check_stream(query.get("stream") or "default")
        records = parse_records(body, headers.get("x-record-id"))

        def done(result: Stored | HttpError) -> None:
            if isinstance(result, HttpError):
                reply(error(result.status, result.message, result.headers))
            else:
                reply(_answer_encoded(stream, len(records), result))

        self.store.submit(Incoming(job, stream, records), done, alone)


async def _file(store: Store, job: str, request: Request) -> Response:
    name = request.query.get("name") or ""
    if not FILE_RE.match(name):
        raise HttpError(
            400,
            f"file name {name!r} is invalid: give ?name= with 1-200 letters, digits, "
            "spaces, '.', '_' or '-'",
        )
    size = request.content_length
    if size is None:
        raise HttpError(411, "send the file with a Content-Length header")
    if size > MAX_FILE_BYTES:
        raise HttpError(413, f"file of {size} bytes is over the limit of {MAX_FILE_BYTES} bytes")
    seq = await store.store_file(job, name, request.chunks(), size)
    return Response(201, {"name": name, "seq": seq, "size": size})
