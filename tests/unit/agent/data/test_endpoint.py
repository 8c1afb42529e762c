"""The local data endpoint, served for real on 127.0.0.1 (no server, no engine):
what workloads get back for good and bad requests, idempotency, backpressure,
files, the per-job token, and a stable port."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edgefleet.agent.data.endpoint import MAX_RECORD_BYTES, parse_records
from edgefleet.agent.data.service import DataService, _loopback, _within
from edgefleet.agent.http_server import HttpError
from tests.support.agents import agent_context


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[DataService]:
    data = DataService(await agent_context(tmp_path, data_quota_mb=1))
    await data.start()
    yield data
    await data.stop()


async def test_records_are_stored_with_seqs_and_ids(service: DataService) -> None:
    url = service.url("j1")
    async with httpx.AsyncClient() as http:
        one = await http.post(url, params={"stream": "m"}, json={"n": 1})
        assert one.status_code == 201, one.text
        assert one.json() == {"stream": "m", "accepted": 1, "duplicates": 0, "seqs": [1]}
        lines = "\n".join(json.dumps({"n": n, "id": f"r{n}"}) for n in (2, 3)) + "\n"
        many = await http.post(url, params={"stream": "m"}, content=lines)
        assert many.json()["seqs"] == [2, 3]
        again = await http.post(url, params={"stream": "m"}, content=lines)
        assert again.status_code == 200 and again.json()["duplicates"] == 2
        assert again.json()["seqs"] == [2, 3]
        header = await http.post(url, json={"n": 4}, headers={"X-Record-Id": "h"})
        repeat = await http.post(url, json={"n": 4}, headers={"X-Record-Id": "h"})
        assert header.json()["seqs"] == repeat.json()["seqs"] == [1]
        assert header.json()["stream"] == "default"
        backlog = (await http.get(url)).json()
        assert {s["stream"]: s["pending"] for s in backlog["streams"]} == {"m": 3, "default": 1}
    rows = service.buffer.batch(100, 10**6)
    assert [json.loads(r.payload)["n"] for r in rows] == [1, 2, 3, 4]


async def test_bad_requests_get_clear_4xx_and_store_nothing(service: DataService) -> None:
    url = service.url("j1")
    async with httpx.AsyncClient() as http:
        cases = [
            ({"content": b"not json"}, {}, 400, "not valid JSON"),
            ({"content": b'{"a": 1}\n{oops}\n'}, {}, 400, "line 2"),
            ({"content": b"[1, 2]"}, {}, 422, "array"),
            ({"content": b'"text"'}, {}, 422, "must be a JSON object"),
            ({"content": b'{"a": NaN}'}, {}, 400, "NaN"),
            # Read as infinity, which compacts to the non-JSON ``Infinity``.
            ({"content": b'{"a": 1e400}'}, {}, 400, "not valid JSON"),
            ({"content": b'{"a": 1}\n{"b": -1e999}\n'}, {}, 400, "line 2"),
            # A lone surrogate, escaped or as raw bytes: no UTF-8 for it (the
            # connection used to fail with no answer at all).
            ({"content": b'{"a": "\\ud800"}'}, {}, 400, "not valid JSON"),
            ({"content": b'{"a": "\xed\xa0\x80"}'}, {}, 400, "not valid JSON"),
            ({"content": b""}, {}, 400, "empty"),
            ({"json": {"big": "x" * MAX_RECORD_BYTES}}, {}, 413, "limit"),
            ({"json": {"a": 1}}, {"stream": "bad name!"}, 400, "stream name"),
            ({"json": {"a": 1}}, {"stream": "-x"}, 400, "stream name"),
        ]
        for body, params, status, words in cases:
            answer = await http.post(url, params=params, **body)
            assert answer.status_code == status, (body, answer.text)
            assert words in answer.json()["error"], answer.text
        wrong = service.url("j1").replace(service.token("j1"), service.token("j2"))
        assert (await http.post(wrong, json={"a": 1})).status_code == 404
        assert (await http.put(url, json={"a": 1})).status_code == 405
        # And the good ones after them still go through.
        assert (await http.post(url, json={"ok": True})).status_code == 201
    assert service.buffer.pending == 1


async def test_full_buffer_answers_507_with_retry_after(tmp_path: Path) -> None:
    data = DataService(await agent_context(tmp_path, data_quota_mb=1))
    await data.start()
    try:
        url = data.url("j")
        blob = {"blob": "x" * 200_000}
        async with httpx.AsyncClient() as http:
            codes = [(await http.post(url, json=blob)).status_code for _ in range(6)]
            assert codes[:5] == [201] * 5
            full = await http.post(url, json=blob)
            assert full.status_code == 507
            assert "full" in full.json()["error"]
            assert full.headers["retry-after"]
    finally:
        await data.stop()


async def test_files_are_stored_and_listed(service: DataService) -> None:
    url = service.url("j1") + "/files"
    async with httpx.AsyncClient() as http:
        ok = await http.post(url, params={"name": "capture.pcap"}, content=b"\x00\x01" * 1000)
        assert ok.status_code == 201 and ok.json()["size"] == 2000
        bad = await http.post(url, params={"name": "../etc/passwd"}, content=b"x")
        assert bad.status_code == 400
    (pending,) = service.buffer.pending_files()
    assert pending.name == "capture.pcap" and pending.path.read_bytes() == b"\x00\x01" * 1000


async def test_port_and_secret_are_kept_across_restarts(tmp_path: Path) -> None:
    first = DataService(await agent_context(tmp_path))
    port, token = first.port, first.token("j")
    first.buffer.close()
    second = DataService(await agent_context(tmp_path))
    assert (second.port, second.token("j")) == (port, token)
    assert second.token("k") != token
    second.buffer.close()
    fixed = DataService(await agent_context(tmp_path / "other", data_port=45678))
    assert fixed.port == 45678
    fixed.buffer.close()


def test_peer_checks() -> None:
    assert _loopback("127.0.0.1") and not _loopback("10.0.0.2")
    allow = _within(ipaddress.ip_network("10.89.3.0/24"))
    assert allow("10.89.3.7") and not allow("10.89.4.7") and not allow("192.168.1.2")


def test_parse_records_names_the_line() -> None:
    assert parse_records(b'{\n  "pretty": true\n}\n', None) == [(None, '{"pretty":true}')]
    with pytest.raises(HttpError) as err:
        parse_records(b'{"a":1}\n{"b":2}\n', "rid")
    assert err.value.status == 400 and "X-Record-Id" in err.value.message
    assert parse_records(b'{"id": 7}\n{"id": "x"}\n{"id": true}', None)[0][0] == "7"
    assert [r for r, _ in parse_records(b'{"id": 7}\n{"id": "x"}\n{"id": true}', None)] == [
        "7",
        "x",
        None,
    ]


async def test_expect_100_continue_gets_an_answer_at_once(service: DataService) -> None:
    """curl sends ``Expect: 100-continue`` for bodies over 1 KiB and waits for it."""
    from urllib.parse import urlsplit

    parts = urlsplit(service.url("j1"))
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = json.dumps({"blob": "x" * 5000}).encode()
    writer.write(
        f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert interim.startswith(b"HTTP/1.1 100")
    writer.write(body)
    final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert final.startswith(b"HTTP/1.1 201")
    writer.close()
