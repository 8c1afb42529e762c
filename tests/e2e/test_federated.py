"""Federated statistics end to end: a real server, five real agents (process
runtime), each with its own CSV declared through ``edgefleet agent datasets add``.

What must hold: the secure aggregates equal numpy's over the union; the server
relays nothing (and stores and logs nothing) that carries one device's value or
its plaintext vector; drop-outs after and before the masked input leave a
correct result over the right devices; refusals release nothing.
"""

from __future__ import annotations

import base64
import json
import math
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefleet.client import ApiError
from edgefleet.fed.messages import Params
from edgefleet.fed.ring import Ring
from edgefleet.fed.stats import local_vector, params_for
from tests.conftest import Fleet
from tests.support.procs import AgentProc, ServerProc, wait_for

pytestmark = pytest.mark.slow

NAMES = ["ant", "bee", "cat", "dog", "eel"]
BINS = [0.0, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0]
ROUND_TIMEOUT = 8.0


@dataclass
class Device:
    name: str
    agent: AgentProc
    id: str
    csv: Path
    values: list[float]
    cells: list[str]  # the values as written in the CSV


def write_csv(path: Path, rng: random.Random, rows: int) -> tuple[list[float], list[str]]:
    cells = [f"{rng.gauss(21.0, 6.0):.9f}" for _ in range(rows)]
    sites = [rng.choice("abc") for _ in range(rows)]
    path.write_text(
        "temp,site\n" + "".join(f"{c},{s}\n" for c, s in zip(cells, sites, strict=True))
    )
    return [float(c) for c in cells], cells


def declare(agent: AgentProc, name: str, csv: Path, *flags: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", name, str(csv),
         "--state-dir", str(agent.state_dir), *flags],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def start_fleet(
    fleet: Fleet, tmp_path: Path, faults: dict[str, str] | None = None, seed: int = 8
) -> tuple[ServerProc, list[Device]]:
    server = fleet.start_server(fed_transcript=True)
    rng = random.Random(seed)
    key = fleet.key()
    devices = []
    for i, name in enumerate(NAMES):
        csv = tmp_path / f"{name}.csv"
        values, cells = write_csv(csv, rng, 20 + 7 * i)
        fault = (faults or {}).get(name)
        agent = AgentProc(fleet.workdir, [server.url], key=key, name=name, fed_fault=fault)
        if i < 3:  # declared before the agent starts ...
            declare(agent, "readings", csv)
        fleet.procs.append(agent)
        agent.start()
        devices.append(Device(name, agent, "", csv, values, cells))
    for device in devices:
        device.id = device.agent.wait_enrolled()
    for device in devices[3:]:  # ... and while it runs
        declare(device.agent, "readings", device.csv)
    with server.client() as client:
        wait_for(
            lambda: (
                len(client.datasets(dataset="readings")) == 5
                and all(d["is_online"] for d in client.datasets(dataset="readings"))
            ),
            30,
            what="five devices reporting 'readings'",
        )
    return server, devices


def relative(got: float, want: float) -> float:
    return abs(got - want) / max(abs(want), 1e-300)


def compute(server: ServerProc, **request: Any) -> dict[str, Any]:
    request.setdefault("round_timeout", ROUND_TIMEOUT)
    with server.client() as client:
        result: dict[str, Any] = client.compute(wait=True, timeout=120, **request)
    return result


def test_secure_statistics_match_numpy_and_nothing_leaks(fleet: Fleet, tmp_path: Path) -> None:
    server, devices = start_fleet(fleet, tmp_path)
    ids = [d.id for d in devices]
    union = np.array([x for d in devices for x in d.values])

    # What the server lists: schema and a rounded size, no value.
    with server.client() as client:
        listed = client.datasets(dataset="readings")
    assert {d["device"] for d in listed} == set(ids)
    for item in listed:
        assert item["columns"] == [
            {"name": "temp", "type": "number"},
            {"name": "site", "type": "string"},
        ]
        assert item["rows_approx"] % 10 == 0 and item["min_parties"] == 3

    expected = {
        "count": float(len(union)),
        "sum": math.fsum(union),
        "mean": float(np.mean(union)),
        "variance": float(np.var(union, ddof=1)),
    }
    for op, want in expected.items():
        done = compute(server, dataset="readings", op=op, column="temp", devices=ids)
        assert done["state"] == "done", done
        assert relative(done["result"]["value"], want) < 1e-9, (op, done["result"], want)
        assert done["result"]["n"] == len(union)
        assert sorted(done["participants"]) == sorted(ids) and done["dropped"] == []
    histogram = compute(
        server, dataset="readings", op="histogram", column="temp", selector={}, bins=BINS
    )
    assert histogram["state"] == "done", histogram
    assert histogram["result"]["counts"] == np.histogram(union, bins=BINS)[0].tolist()

    # The CLI prints the same.
    shown = subprocess.run(
        [sys.executable, "-m", "edgefleet", "--server", server.url, "--token",
         "eft_test-admin-token-0123456789", "fed", "run", "--dataset", "readings", "--op",
         "mean", "--column", "temp", "--selector", "", "--wait"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert repr(expected["mean"])[:10] in shown.stdout and "participants (5)" in shown.stdout

    # A device that cannot read its column declines, says why, and the rest go on.
    dirty = tmp_path / "dirty.csv"
    rows = [f"{v!r},a" for v in devices[0].values] * 60  # past the 1000-row type sample
    rows[1100] = "n/a,a"
    dirty.write_text("temp,site\n" + "\n".join(rows) + "\n")
    for device in devices:
        declare(device.agent, "mixed", dirty if device is devices[0] else device.csv)
    with server.client() as client:
        wait_for(lambda: len(client.datasets(dataset="mixed")) == 5, 30, what="'mixed'")
    partial = compute(server, dataset="mixed", op="sum", column="temp", devices=ids)
    assert partial["state"] == "done", partial
    assert sorted(partial["participants"]) == sorted(ids[1:])
    assert partial["dropped"] == [ids[0]]
    declined = {p["device"]: p for p in partial["parties"]}[ids[0]]
    assert declined["status"] == "declined" and "row 1101 is not a number" in declined["reason"]
    rest = [x for d in devices[1:] for x in d.values]
    assert relative(partial["result"]["value"], math.fsum(rest)) < 1e-9

    assert_refusals(server, devices, tmp_path)
    assert_nothing_leaked(server, devices)


def assert_refusals(server: ServerProc, devices: list[Device], tmp_path: Path) -> None:
    ids = [d.id for d in devices]
    for device in devices:
        declare(device.agent, "research-only", device.csv, "--allow-project", "research")
        declare(device.agent, "counts-only", device.csv, "--allow-op", "count")
        declare(device.agent, "five-or-more", device.csv, "--min-parties", "5")
    with server.client() as client:
        wait_for(lambda: len(client.datasets(dataset="five-or-more")) == 5, 30, what="policies")
        refusals = [
            ({"dataset": "readings", "devices": ids[:2]}, 422, "needs at least 3 devices"),
            ({"dataset": "five-or-more", "devices": ids[:4]}, 422, "needs at least 5 devices"),
            ({"dataset": "research-only", "devices": ids}, 403, "do not allow project 'default'"),
            ({"dataset": "counts-only", "devices": ids}, 403, "do not allow mean"),
        ]
        for request, status, message in refusals:
            with pytest.raises(ApiError) as refused:
                client.compute(op="mean", column="temp", **request)
            assert refused.value.status == status and message in refused.value.message
            audit_id = refused.value.body["error"]["computation"]
            audit = client.computation(audit_id)
            assert audit["state"] == "refused" and audit["result"] is None
        # A project without access to the devices at all: they do not exist for it.
        client.create_project("outsiders")
        with pytest.raises(ApiError) as hidden:
            client.compute("readings", "mean", "temp", devices=ids, project="outsiders")
        assert hidden.value.status == 422 and "no device" in hidden.value.message
        # ... and the five-party dataset works with five.
        ok = client.compute(
            "five-or-more", "count", "temp", devices=ids, round_timeout=ROUND_TIMEOUT, wait=True
        )
        assert ok["state"] == "done" and ok["result"]["n"] == sum(len(d.values) for d in devices)
        audit = client.computations(state="refused")
        assert len(audit) == 5 and all(a["result"] is None for a in audit)
        # Events are written in batches (every 0.25 s): they follow shortly.
        wait_for(lambda: len(client.events(kind="computation.refused")) == 5, 10, what="5 events")


def secrets_of(devices: list[Device]) -> tuple[list[str], list[int], int]:
    """What would betray one device: its cells and local sums as text, and the
    fixed-point ring elements of its plaintext vectors (16 bytes each on the wire)."""
    texts: list[str] = []
    elements: list[int] = []
    for device in devices:
        texts += device.cells
        for op, bins in (("count", None), ("sum", None), ("variance", None), ("histogram", BINS)):
            vector = local_vector(op, device.values, bins)  # type: ignore[arg-type]
            texts += [repr(x) for x in vector[1:] if op != "histogram"]  # n: too short to search
            ring = Ring(params_for(op, bins))  # type: ignore[arg-type]
            elements += [e for e in ring.elements(ring.encode(vector)) if e]
    return texts, elements, Ring(Params(length=1)).width


def assert_nothing_leaked(server: ServerProc, devices: list[Device]) -> None:
    texts, elements, width = secrets_of(devices)
    encodings = [e.to_bytes(width, "little") for e in elements]
    transcript = (server.data_dir / "fed-transcript.jsonl").read_text()
    relayed = [json.loads(line) for line in transcript.splitlines()]
    assert len(relayed) > 100
    kinds = {r["message"]["payload"]["type"] for r in relayed}
    assert kinds >= {"fed.invite", "fed.advertise", "fed.roster", "fed.shares", "fed.inbox",
                     "fed.masked", "fed.unmask_request", "fed.unmask_response", "fed.abort"}  # fmt: skip
    blobs = b""
    for line in relayed:
        payload = line["message"]["payload"]
        if payload["type"] == "fed.masked":
            blobs += base64.b64decode(payload["vector"])
    assert blobs
    for text in texts:
        assert text not in transcript, text
    for element, encoded in zip(elements, encodings, strict=True):
        assert encoded not in blobs
        assert element < 2**50 or str(element) not in transcript  # 16+ digits: distinctive

    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("*.db*"))
    logs = server.log() + "".join(
        d.agent.log() + (d.agent.state_dir / "agent.log").read_text() for d in devices
    )
    assert stored and "computation" in logs
    for text in texts:
        assert text.encode() not in stored, text
        assert text not in logs, text
    for element, encoded in zip(elements, encodings, strict=True):
        if element % 2**40:  # a fraction: distinctive bytes (whole numbers are mostly zeros)
            assert encoded not in stored
        assert element < 2**50 or str(element).encode() not in stored


def test_dropouts_after_and_before_the_masked_input(
    fleet: Fleet, tmp_path: Path, database_url: str | None
) -> None:
    faults = {
        "ant": "exit-after-masked@flaky",  # sends its masked input, then dies
        "bee": "delay-masked:120@flaky",  # stalls before masking; the test kills it
        "cat": "exit-before-masked@doomed",
    }
    server, devices = start_fleet(fleet, tmp_path, faults, seed=11)
    ant, bee, cat = devices[:3]
    ids = [d.id for d in devices]
    for device in devices:
        declare(device.agent, "flaky", device.csv)
        declare(device.agent, "doomed", device.csv)
    with server.client() as client:
        wait_for(lambda: len(client.datasets(dataset="doomed")) == 5, 30, what="datasets")
        started = client.compute(
            "flaky", "variance", "temp", devices=ids, round_timeout=ROUND_TIMEOUT
        )
        wait_for(lambda: "TEST FAULT: waiting" in bee.agent.log(), 60, what="bee stalls")
        bee.agent.kill()
        done = client.wait_computation(started["id"], timeout=120)
    assert done["state"] == "done", done
    included = [d for d in devices if d is not bee]
    assert sorted(done["participants"]) == sorted(d.id for d in included)
    assert done["dropped"] == [bee.id]
    parties = {p["device"]: p for p in done["parties"]}
    # ant left after its masked input: in the sum, gone by the consistency round
    assert parties[ant.id]["status"] == "included" and parties[ant.id]["round"] == "consistency"
    assert parties[bee.id]["status"] == "dropped" and parties[bee.id]["round"] == "masked"
    want = np.var([x for d in included for x in d.values], ddof=1)
    assert relative(done["result"]["value"], float(want)) < 1e-9
    assert not ant.agent.running

    # cat dies before masking: two of the three left are below the threshold.
    with server.client() as client:
        failed = client.compute(
            "doomed", "sum", "temp", devices=ids, round_timeout=ROUND_TIMEOUT, wait=True
        )
    assert failed["state"] == "failed" and failed["result"] is None
    assert failed["participants"] == [] and sorted(failed["dropped"]) == sorted(ids)
    assert "threshold is 3" in failed["error"] and "nothing was released" in failed["error"]
    assert not cat.agent.running


def test_a_changed_peer_key_is_declined_until_the_operator_repins(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Devices pin their peers' long-term keys on first sight. A device that is
    shown another key for a known peer (as when a server swaps keys to sit in the
    middle) declines, naming the peer and the flag; the others compute without
    it; after ``--fed-repin PEER`` the device pins the key it is shown and joins."""
    server, devices = start_fleet(fleet, tmp_path, seed=5)
    ant, bee = devices[0], devices[1]
    ids = [d.id for d in devices]
    for device in devices:
        declare(device.agent, "spare", device.csv)
    first = compute(server, dataset="readings", op="sum", column="temp", devices=ids)
    assert first["state"] == "done" and len(first["participants"]) == 5
    pins_path = ant.agent.state_dir / "fed-peers.json"
    assert pins_path.stat().st_mode & 0o777 == 0o600
    pins = json.loads(pins_path.read_text())
    assert sorted(pins["peers"]) == sorted(set(ids) - {ant.id})
    bee_key = pins["peers"][bee.id]

    pins["peers"][bee.id] = base64.b64encode(bytes(range(32))).decode()  # not bee's key
    pins_path.write_text(json.dumps(pins))
    with server.client() as client:
        wait_for(lambda: len(client.datasets(dataset="spare")) == 5, 30, what="'spare' on 5")
    second = compute(server, dataset="spare", op="sum", column="temp", devices=ids)
    assert second["state"] == "done", second
    assert sorted(second["participants"]) == sorted(set(ids) - {ant.id})
    refused = {p["device"]: p for p in second["parties"]}[ant.id]
    assert refused["status"] == "declined", refused
    assert bee.id in refused["reason"] and f"--fed-repin {bee.id}" in refused["reason"]

    ant.agent.stop()
    ant.agent.argv += ["--fed-repin", bee.id]
    ant.agent.start()
    with server.client() as client:
        wait_for(lambda: client.device(ant.id)["is_online"], 30, what="ant back online")
    third = compute(server, dataset="readings", op="sum", column="temp", devices=ids)
    assert third["state"] == "done" and ant.id in third["participants"], third
    assert json.loads(pins_path.read_text())["peers"][bee.id] == bee_key
