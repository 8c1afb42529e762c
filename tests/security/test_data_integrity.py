"""A device's records: a hostile device cannot forge another's data, bad
records are rejected alone (the rest of the batch is stored, exactly once, and
the agent's uploader goes on), and every output format is the server's own
encoding — JSON pages, JSON lines, CSV with formula cells neutralized.

Real processes: a server, two agents (a victim and Mallory); Mallory's
credential is then used by hand over a raw WebSocket, as a hostile agent
would, and Mallory's own buffer is seeded with bad records to show a real
agent's uploader is not wedged by them.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from edgefleet.wire.messages import DataAck, DataBatch, DataRecord
from tests.conftest import Fleet
from tests.support.procs import AgentProc, ServerProc, wait_for
from tests.support.raw_agent import answer, say_hello

SLEEPER = {
    "services": {"probe": {"x-edgefleet-runtime": "process", "command": ["sleep", "100000"]}}
}


def _setup(fleet: Fleet) -> tuple[ServerProc, AgentProc, str, str, str]:
    server = fleet.start_server()
    victim = fleet.start_agent("victim")
    mallory = fleet.start_agent("mallory")
    victim_id, mallory_id = victim.wait_enrolled(), mallory.wait_enrolled()
    with server.client() as client:
        client.create_application("probe", "1", spec=SLEEPER)
        job = str(client.create_job("probe", devices=[victim_id, mallory_id])["id"])
    # An agent that has just enrolled starts again without the enrolling code; its
    # durable buffer exists once the restarted process has opened it.
    wait_for(lambda: _has_buffer(mallory.state_dir / "data" / "buffer.db"), 60, what="buffer.db")
    mallory.stop()
    return server, mallory, victim_id, mallory_id, job


def _has_buffer(path: Path) -> bool:
    if not path.exists():
        return False
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return (
            db.execute("SELECT 1 FROM sqlite_master WHERE name = 'records'").fetchone() is not None
        )
    except sqlite3.OperationalError:  # still being created
        return False
    finally:
        db.close()


def _records(http: httpx.Client, job: str, **params: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/v1/jobs/{job}/data", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _ack(ws: ClientConnection, batch: int) -> DataAck:
    return answer(ws, DataAck, lambda m: m.batch == batch, what=f"no ack for batch {batch}")


def test_forged_records_cannot_pose_as_another_device_and_are_re_encoded(
    fleet: Fleet, tmp_path: Path
) -> None:
    server, mallory, victim_id, mallory_id, job = _setup(fleet)
    credential = json.loads((mallory.state_dir / "device.json").read_text())["credential"]
    splice = '{"n": 2}, "device": "' + victim_id + '", "stream": "secret"'
    next_line = '{"n": 3}}\n{"device": "' + victim_id + '", "stream": "s", "seq": 99, "record": {}'
    nasty = {
        "device": victim_id,
        "stream": "other",
        "note": 'x"}\n{"device": "' + victim_id + '"',
        "f": '=HYPERLINK("http://evil","x")',
    }
    texts = [
        '{"n": 1, "v": 5, "s": "=1+1", "a": "@SUM(A1)", "p": "+1", "m": "-1"}',
        splice,
        next_line,
        "{nope",
        json.dumps(nasty),
        '{"n": 6}',
    ]
    now = time.time()
    batch = DataBatch(
        batch=1,
        records=[
            DataRecord(job=job, stream="s", seq=i, time=now, id=f"r{i}", record=text)
            for i, text in enumerate(texts, 1)
        ],
    )
    url = server.url.replace("http://", "ws://") + "/api/v1/agent/connect"
    with connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        say_hello(ws)
        ws.send(batch.model_dump_json())
        ack = _ack(ws, 1)
        # The bad ones are named with the reason; the batch as a whole is acknowledged.
        assert ack.ok and ack.error is None and not ack.discarded
        assert set(ack.rejected) == {f"{job}/s/2", f"{job}/s/3", f"{job}/s/4"}
        assert all("not valid JSON" in why for why in ack.rejected.values())
        # Sent again (a lost ack): stored once, the rejects rejected again.
        ws.send(batch.model_copy(update={"batch": 2}).model_dump_json())
        again = _ack(ws, 2)
        assert again.ok and set(again.rejected) == set(ack.rejected)

    with server.http() as http:
        items = _records(http, job)
        assert [i["seq"] for i in items] == [1, 5, 6]
        assert {i["device"] for i in items} == {mallory_id} and {i["stream"] for i in items} == {
            "s"
        }
        assert items[1]["record"] == nasty  # the body's "device" stays inside the record
        assert _records(http, job, device=victim_id) == []
        assert _records(http, job, stream="secret") == []

        # JSON lines: one line per stored record, each the server's encoding.
        jsonl = http.get(f"/api/v1/jobs/{job}/data", params={"format": "jsonl"})
        lines = [json.loads(x) for x in jsonl.text.splitlines()]
        assert [x["seq"] for x in lines] == [1, 5, 6]
        assert {x["device"] for x in lines} == {mallory_id}

        # CSV: formula strings neutralized, numbers kept as numbers.
        text = http.get(f"/api/v1/jobs/{job}/data", params={"format": "csv"}).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["device"] for r in rows] == [mallory_id] * 3
        first = rows[0]
        assert (first["s"], first["a"], first["p"], first["m"]) == (
            "'=1+1",
            "'@SUM(A1)",
            "'+1",
            "'-1",
        )
        assert first["v"] == "5" and first["n"] == "1"
        assert rows[1]["f"] == '\'=HYPERLINK("http://evil","x")'
        assert rows[1]["record.device"] == victim_id

        # The rejection is on record, attributed to the sender.
        def rejected_event() -> dict[str, Any] | None:
            events = http.get("/api/v1/events", params={"kind": "data.rejected"}).json()["items"]
            return events[0] if events else None

        event = wait_for(rejected_event, 10, what="data.rejected event")
        assert event["device"] == mallory_id and event["job"] == job
        assert event["data"]["rejected"] == 3 and "not valid JSON" in event["message"]


def test_bad_records_in_a_real_agents_buffer_do_not_wedge_its_uploader(
    fleet: Fleet, tmp_path: Path
) -> None:
    server, mallory, _victim_id, mallory_id, job = _setup(fleet)
    # Seed Mallory's durable buffer (agent stopped) with good and bad records,
    # as a tampered or buggy device would hold them.
    db = sqlite3.connect(mallory.state_dir / "data" / "buffer.db")
    texts = ['{"n": 1}', "{nope", '{"n": 3}', "[1, 2]", '{"n": 5}']
    with db:
        for seq, text in enumerate(texts, 1):
            db.execute(
                "INSERT INTO records (job, stream, seq, time, rid, payload, size) "
                "VALUES (?, 'seeded', ?, ?, NULL, ?, ?)",
                (job, seq, time.time(), text, len(text)),
            )
    db.close()
    mallory.start()

    def drained() -> list[dict[str, Any]] | None:
        with server.http() as http:
            items = _records(http, job, stream="seeded")
        left = sqlite3.connect(mallory.state_dir / "data" / "buffer.db")
        pending = left.execute("SELECT count(*) FROM records").fetchone()[0]
        left.close()
        return items if pending == 0 and len(items) == 3 else None

    items = wait_for(drained, 60, what="good records stored and the buffer emptied")
    assert [(i["seq"], i["record"]) for i in items] == [(1, {"n": 1}), (3, {"n": 3}), (5, {"n": 5})]
    assert {i["device"] for i in items} == {mallory_id}
    log = mallory.log()
    assert "server rejected record" in log and "not valid JSON" in log
    assert "must be a JSON object, not an array" in log
