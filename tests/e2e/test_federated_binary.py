"""Federated messages in binary on the agent connection, over the real server.

Four real agents (protocol 3) and one device that speaks protocol 2 (a raw
WebSocket with a real Party: an agent from before binary frames) compute a
1,000-bin histogram together. What must hold: the new agents' masked inputs
and share bundles travel as typed binary frames, the old device's as JSON
(mixed fleet, negotiated in hello/welcome); the result is exact; and a binary
device sends barely more than its ring elements, clearly less than in JSON.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from edgefleet.fed.messages import Task
from edgefleet.fed.stats import task_params
from tests.conftest import Fleet
from tests.support.fedraw import RawDevice
from tests.support.procs import AgentProc, wait_for

pytestmark = pytest.mark.slow

EDGES = [float(e) for e in np.linspace(0.0, 100.0, 1001)]  # 1,000 bins: the longest allowed
HISTOGRAM = Task(project="default", dataset="readings", op="histogram", column="x", bins=EDGES)
RING_BYTES = task_params(HISTOGRAM, parties=5).ring_bits // 8  # counts: 64-bit, 8 B per element


def declare(agent: AgentProc, csv: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", "readings", str(csv),
         "--state-dir", str(agent.state_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_binary_frames_carry_the_large_parts_and_an_old_agent_still_takes_part(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server(fed_transcript=True)
    key, rng = fleet.key(), random.Random(3)
    values: list[float] = []
    agents = []
    for name in ["ant", "bee", "cat", "dog", "old"]:
        csv = tmp_path / f"{name}.csv"
        rows = [rng.uniform(0.0, 100.0) for _ in range(40)]
        values += rows
        csv.write_text("x\n" + "".join(f"{v!r}\n" for v in rows))
        agent = AgentProc(fleet.workdir, [server.url], key=key, name=name)
        declare(agent, csv)
        fleet.procs.append(agent)
        agent.start()
        agents.append(agent)
    ids = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        wait_for(
            lambda: len(client.datasets(dataset="readings")) == 5, 60, what="5 datasets reported"
        )
        # the fifth device goes on as an agent from before protocol 3 would
        agents[-1].stop()
        old = RawDevice(server.url, agents[-1].state_dir, protocol=2)
        old.start()
        try:
            wait_for(
                lambda: all(d["is_online"] for d in client.datasets(dataset="readings")),
                30,
                what="all five online",
            )
            done = client.compute(
                "readings", "histogram", "x", devices=ids, bins=EDGES, round_timeout=20, wait=True
            )
        finally:
            old.stop()
    assert old.error is None, old.error
    assert done["state"] == "done", done
    assert sorted(done["participants"]) == sorted(ids)
    expected, _ = np.histogram(values, bins=EDGES)
    assert done["result"]["counts"] == expected.tolist()  # exact, across both encodings

    # the old device was welcomed with protocol 2 and got everything as JSON text
    assert old.welcome_protocol == 2
    assert old.received["binary"] == 0 and old.received["text"] >= 5

    lines = [
        json.loads(x)
        for x in (server.data_dir / "fed-transcript.jsonl").read_text().split("\n")
        if x
    ]
    sent: dict[str, int] = defaultdict(int)
    kinds: dict[tuple[str, str], bool] = {}
    for line in lines:
        payload = line["message"]["payload"]
        if line["direction"] == "from":
            sent[line["device"]] += line["bytes"]
        if payload["type"] in ("fed.masked", "fed.shares", "fed.inbox"):
            kinds[(line["device"], payload["type"])] = line["binary"]
    new_ids, old_id = ids[:-1], ids[-1]
    for device in new_ids:
        assert kinds[(device, "fed.masked")] and kinds[(device, "fed.shares")]
        assert kinds[(device, "fed.inbox")]  # server -> agent too
    assert not any(kinds[(old_id, t)] for t in ("fed.masked", "fed.shares", "fed.inbox"))

    ring = 1001 * RING_BYTES
    plain = 1001 * 8  # the vector as float64
    binary = max(sent[d] for d in new_ids)
    print(
        f"bytes sent per device: binary {binary:,} B = {binary / ring:.2f}x its ring elements "
        f"({binary / plain:.2f}x a float64 vector; the product's ring is {RING_BYTES * 8}-bit); "
        f"JSON {sent[old_id]:,} B = {sent[old_id] / ring:.2f}x"
    )
    assert RING_BYTES == 8  # the server picked the 64-bit ring for counts
    assert binary <= 1.3 * plain  # the figure (<= 1.5x a float64 vector), honestly
    assert binary <= ring + 3000  # the large part costs its bytes only, plus keys and tags
    assert binary < 0.85 * sent[old_id]  # base64 in JSON costs a third more
