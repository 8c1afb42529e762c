"""Attacks on device telemetry and stored logs (issue 18): reading another
project's device, malformed queries, and a hostile device that floods,
forges or oversizes its reports over a real connection."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest
from websockets.sync.client import connect

from edgefleet.wire.messages import (
    TelemetryAck,
    TelemetryBatch,
    WorkloadLogs,
)
from edgefleet.wire.telemetry import LogLine, Sample
from tests.conftest import Fleet
from tests.security.conftest import Estate
from tests.support.procs import ServerProc
from tests.support.raw_agent import answer, say_hello


def test_another_projects_device_metrics_and_logs_are_not_found(estate: Estate) -> None:
    with estate.http("outsider") as http:
        unknown = http.get("/api/v1/devices/d-nonexistent/metrics")
        theirs = http.get(f"/api/v1/devices/{estate.device}/metrics")
        assert theirs.status_code == unknown.status_code == 404
        # the same answer as for a device that does not exist (it echoes only the reference)
        assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"] == "not_found"
        assert '"items"' not in theirs.text
        assert http.get(f"/api/v1/jobs/{estate.job}/logs").status_code == 404
    with estate.http("viewer") as http:  # read is enough: a viewer sees the device already
        shown = http.get(f"/api/v1/devices/{estate.device}/metrics", params={"since": "1h"})
        assert shown.status_code == 200
        assert set(shown.json()) >= {"items", "next"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"step": "abc"}, "step"),
        ({"step": "0"}, "step"),
        ({"step": "-5m"}, "step"),
        ({"step": "999d"}, "step"),
        ({"step": "1" * 5000}, "step"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-45T99:00"}, "since"),
        ({"until": "<script>"}, "until"),
        ({"cursor": "!!not-ours"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_malformed_queries_are_422_naming_the_field(
    estate: Estate, params: dict[str, str], field: str
) -> None:
    with estate.http("viewer") as http:
        bad = http.get(f"/api/v1/devices/{estate.device}/metrics", params=params)
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["field"] == field


def sample(seq: int, when: float, **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "time": when, "cpu": 5.0, "memory": 20.0, "disk": 30.0, **kw}


def test_a_hostile_device_is_bounded_and_speaks_only_for_itself(fleet: Fleet) -> None:
    server = fleet.start_server(
        extra_args=["--telemetry-max-batch", "100", "--stored-log-bytes", "2000"]
    )
    mallory = fleet.start_agent("mallory", extra_args=["--telemetry-interval", "3600"])
    victim = fleet.start_agent("victim", extra_args=["--telemetry-interval", "3600"])
    mallory_id, victim_id = mallory.wait_enrolled(), victim.wait_enrolled()
    with server.client() as client:
        client.create_project("elsewhere")
        spec = {"services": {"s": {"x-edgefleet-runtime": "process", "command": ["true"]}}}
        client.create_application("own", "1", spec=spec)
        client.create_application("theirs", "1", spec=spec, project="elsewhere")
        own_job = str(client.create_job("own", version="1", devices=[mallory_id])["id"])
        their_job = str(client.create_job("theirs", version="1", selector={"none": "x"})["id"])
    mallory.stop()
    victim.stop()
    mallory_before, victim_before = count(server, mallory_id), count(server, victim_id)
    credential = json.loads((mallory.state_dir / "device.json").read_text())["credential"]
    now = time.time()
    url = server.url.replace("http://", "ws://") + "/api/v1/agent/connect"
    with connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        say_hello(ws)
        # Over the server's --telemetry-max-batch: only the first 100 taken and acknowledged.
        batch = [Sample.model_validate(sample(n, now - 1000 + n)) for n in range(1, 301)]
        ws.send(TelemetryBatch(samples=batch).model_dump_json())
        assert answer(ws, TelemetryAck).upto == 100
        # Over the wire's bound, implausible values, or naming another device: not a
        # message at all, dropped whole; the connection goes on.
        for hostile in (
            {"type": "telemetry", "samples": [sample(n, now - 500 + n) for n in range(501)]},
            {"type": "telemetry", "samples": [sample(400, now - 90, cpu=1e9)]},
            {"type": "telemetry", "samples": [sample(401, now - 80, device=victim_id)]},
            {"type": "telemetry", "device": victim_id, "samples": [sample(402, now - 70)]},
            {
                "type": "workload_logs",
                "job": own_job,
                "service": "s",
                "lines": [{"text": "x"}] * 2001,
            },
        ):
            ws.send(json.dumps(hostile))
        # From the future, or older than rollups are kept: acknowledged, not stored.
        odd = [sample(500, now + 86_400 * 365), sample(501, now - 86_400 * 365)]
        ws.send(json.dumps({"type": "telemetry", "samples": odd}))
        assert answer(ws, TelemetryAck).upto == 501
        # Sent again after a "lost" ack: stored once.
        ws.send(TelemetryBatch(samples=batch[:100]).model_dump_json())
        assert answer(ws, TelemetryAck).upto == 100
        # Logs: kept bounded in bytes; another project's job is not stored at all.
        lines = [LogLine(text=f"{n:04d}" + "y" * 995) for n in range(200)]
        ws.send(WorkloadLogs(job=own_job, service="s", lines=lines).model_dump_json())
        ws.send(WorkloadLogs(job=their_job, service="s", lines=lines).model_dump_json())
        ws.send(TelemetryBatch(samples=[batch[0]]).model_dump_json())  # a barrier: acked after
        assert answer(ws, TelemetryAck).upto == 1

    assert count(server, mallory_id) == mallory_before + 100
    assert count(server, victim_id) == victim_before
    with sqlite3.connect(server.data_dir / "edgefleet.db") as db:
        rows = db.execute("SELECT job_id, size, lines FROM workload_logs").fetchall()
    assert [r[0] for r in rows] == [own_job]
    size, kept = rows[0][1], json.loads(rows[0][2])
    assert size <= 2000 and len(kept) == 2 and kept[-1]["text"].startswith("0199")


def count(server: ServerProc, device: str) -> int:
    with server.http() as http:
        got = http.get(f"/api/v1/devices/{device}/metrics", params={"since": "2d", "limit": "1000"})
    assert got.status_code == 200, got.text
    return len(got.json()["items"])
