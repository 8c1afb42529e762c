"""A dataset made of what the device's own workloads collected: three real
agents declare ``stream:air``, a job's workload posts records to
``EDGEFLEET_DATA_URL``, the agents upload them (and delete them from their
buffers), and a filtered secure mean over the stream still equals the mean of
what was posted: the records were kept on the devices for computations."""

from __future__ import annotations

import json
import math
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.procs import AgentProc, wait_for, wait_for_line

pytestmark = pytest.mark.slow

NAMES = ["oak", "elm", "ash"]


def probe(tmp_path: Path) -> dict[str, Any]:
    """A process service that writes its data URL where the test reads it, then idles."""
    script = (
        f'echo "$$EDGEFLEET_DATA_URL" > {tmp_path}/url-$$EDGEFLEET_DEVICE_ID; exec sleep 100000'
    )
    return {
        "services": {"probe": {"x-edgefleet-runtime": "process", "command": ["sh", "-c", script]}}
    }


def test_a_stream_dataset_survives_upload_and_computes(fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    key = fleet.key()
    agents: list[AgentProc] = []
    for name in NAMES:
        agent = AgentProc(fleet.workdir, [server.url], key=key, name=name)
        done = subprocess.run(
            [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", "air", "stream:air",
             "--state-dir", str(agent.state_dir)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        fleet.procs.append(agent)
        agent.start()
        agents.append(agent)
    ids = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        client.create_application("probe", "1", spec=probe(tmp_path))
        job = client.create_job("probe", devices=ids)["id"]
    rng = random.Random(2)
    kitchen: list[float] = []
    for device in ids:
        url = wait_for_line(tmp_path / f"url-{device}", what="workload started")
        lines = []
        for _ in range(20):
            record = {"pm25": round(rng.uniform(1, 80), 3), "room": rng.choice(["kitchen", "bed"])}
            if record["room"] == "kitchen":
                kitchen.append(record["pm25"])
            lines.append(json.dumps(record))
        sent = httpx.post(url + "?stream=air", content="\n".join(lines), timeout=10)
        assert sent.status_code == 201, sent.text
    with server.client() as client:

        def uploaded() -> bool:
            s = client.data_summary(job)
            return s["records"] == 60 and s["backlog"] == 0

        wait_for(uploaded, 60, what="records uploaded (and gone from the buffers)")
        wait_for(
            lambda: (
                all(
                    any(c["name"] == "pm25" for c in d["columns"])
                    for d in client.datasets(dataset="air")
                )
                and len(client.datasets(dataset="air")) == 3
            ),
            30,
            what="the stream's columns reported",
        )
        result = client.compute(
            "air", "mean", "pm25", devices=ids, wait=True, timeout=120,
            where=[{"column": "room", "op": "==", "value": "kitchen"}],
        )  # fmt: skip
    assert result["state"] == "done", result
    assert result["result"]["n"] == len(kitchen)
    assert math.isclose(result["result"]["value"], statistics.fmean(kitchen), rel_tol=1e-9)
