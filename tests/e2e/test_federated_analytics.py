"""Federated analytics end to end: a real server and four real agents, each with
its own SQLite file declared through ``edgefleet agent datasets add`` (twice:
``plant`` without noise, ``private`` with a differential-privacy budget).

What must hold over the real API: a filtered group-by, a regression and
quantiles equal numpy's over the union of the rows; the devices themselves
refuse the second of two overlapping party sets (differencing); a DP result
states its epsilon, the budget is kept across an agent restart and a query
beyond it is refused.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefleet.client import ApiError
from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, AgentProc, ServerProc, wait_for

pytestmark = pytest.mark.slow

NAMES = ["ant", "bee", "cat", "dog"]
SITES = ["north", "south"]


def make_db(path: Path, rng: random.Random, rows: int) -> list[tuple[float, float, float, str]]:
    data = []
    for _ in range(rows):
        x = rng.uniform(0, 40)
        h = rng.uniform(10, 90)
        y = 1.5 * x - 0.25 * h + 3 + rng.gauss(0, 0.5)
        data.append((x, h, y, rng.choice(SITES)))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE readings (temp REAL, humidity REAL, load REAL, site TEXT)")
        db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", data)
    return data


def declare(agent: AgentProc, name: str, db: Path, *flags: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", name, str(db),
         "--table", "readings", "--state-dir", str(agent.state_dir), *flags],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def cli(server: ServerProc, *args: str) -> str:
    env = dict(os.environ, EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=ADMIN_TOKEN, COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _answers(ledger: Path, dataset: str) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = json.loads(ledger.read_text())["datasets"][dataset]["answers"]
    return answers


def compute(server: ServerProc, devices: list[str], **request: Any) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.compute(
            devices=devices, round_timeout=8.0, wait=True, timeout=120, **request
        )
    return result


@pytest.fixture
def fleet4(fleet: Fleet, tmp_path: Path) -> tuple[ServerProc, list[AgentProc], list[str], dict]:
    server = fleet.start_server()
    rng = random.Random(15)
    key = fleet.key()
    agents, data = [], {}
    for i, name in enumerate(NAMES):
        db = tmp_path / f"{name}.sqlite"
        data[name] = make_db(db, rng, 40 + 10 * i)
        agent = AgentProc(fleet.workdir, [server.url], key=key, name=name)
        declare(agent, "plant", db, "--min-parties", "3")
        declare(agent, "private", db, "--min-parties", "3", "--dp-epsilon", "1.0")
        fleet.procs.append(agent)
        agent.start()
        agents.append(agent)
    ids = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        wait_for(
            lambda: len([d for d in client.datasets() if d["is_online"]]) == 8,
            30,
            what="four devices reporting two datasets",
        )
    return server, agents, ids, data


def test_analytics_match_numpy_and_the_devices_enforce_privacy(fleet4: Any) -> None:
    server, agents, ids, data = fleet4
    rows = np.array([(x, h, y) for name in NAMES for (x, h, y, _) in data[name]])
    sites = [s for name in NAMES for (*_, s) in data[name]]

    # what the devices reported is checked first: a column none of them has is a 422
    with server.client() as client:
        for bad, field in (
            ({"where": [{"column": "wind", "op": ">", "value": 1}]}, "where"),
            ({"group_by": "room", "groups": ["a"]}, "group_by"),
            ({"columns": ["site"]}, "columns"),  # text: cannot be summed
        ):
            with pytest.raises(ApiError) as refused:
                client.compute("plant", "mean", "load", devices=ids, **bad)
            assert refused.value.status == 422 and refused.value.field == field, bad

    # a filtered group-by: mean load per site where temp >= 10
    grouped = compute(
        server, ids, dataset="plant", op="mean", column="load",
        where=[{"column": "temp", "op": ">=", "value": 10}], group_by="site", groups=SITES,
    )  # fmt: skip
    assert grouped["state"] == "done", grouped
    for group in grouped["result"]["groups"]:
        keep = [
            r[2] for r, s in zip(rows, sites, strict=True) if s == group["group"] and r[0] >= 10
        ]
        assert group["parties"] == 4 and group["n"] == len(keep)
        assert group["value"] == pytest.approx(float(np.mean(keep)), rel=1e-9)
    assert grouped["query"]["group_by"] == "site" and grouped["epsilon_spent"] == 0

    # the same through the CLI: a table of groups for people, the computation as JSON
    shown = cli(
        server, "fed", "run", "--dataset", "plant", "--op", "mean", "--column", "load",
        "--where", "temp>=10", "--group-by", "site", "--groups", ",".join(SITES),
        "--selector", "", "--wait",
    )  # fmt: skip
    assert "group north (4 devices)" in shown and "group south (4 devices)" in shown, shown
    assert "epsilon spent: 0" in shown
    as_json = json.loads(
        cli(server, "fed", "run", "--dataset", "plant", "--op", "covariance", "--column", "temp",
            "--columns", "humidity", "--selector", "", "--wait", "-o", "json")
    )  # fmt: skip
    assert as_json["result"]["covariance"][0][1] == pytest.approx(
        float(np.cov(rows[:, 0], rows[:, 1])[0, 1]), rel=1e-9
    )

    # ordinary least squares of load on temp and humidity
    ols = compute(
        server, ids, dataset="plant", op="ols", column="load", columns=["temp", "humidity"]
    )
    x = np.column_stack([np.ones(len(rows)), rows[:, 0], rows[:, 1]])
    beta, *_ = np.linalg.lstsq(x, rows[:, 2], rcond=None)
    assert ols["state"] == "done", ols
    assert ols["result"]["intercept"] == pytest.approx(beta[0], rel=1e-7)
    assert ols["result"]["coefficients"]["temp"] == pytest.approx(beta[1], rel=1e-9)
    assert ols["result"]["coefficients"]["humidity"] == pytest.approx(beta[2], rel=1e-9)
    assert sorted(ols["participants"]) == sorted(ids)

    # differencing: the devices refuse a party set one device away from an answered
    # one for the same rows (ABCD answered above: a sum over ABC would give D's)
    near = compute(server, ids[:3], dataset="plant", op="sum", column="load")
    assert near["state"] == "failed" and near["result"] is None
    assert "single out" in near["error"], near["error"]
    # the four overlapping sums ABC, ABD, ACD, BCD (of another question): only the first
    north = [{"column": "site", "op": "==", "value": "north"}]
    a, b, c, d = ids
    sums = [
        compute(server, parties, dataset="plant", op="sum", column="load", where=north)
        for parties in ([a, b, c], [a, b, d], [a, c, d], [b, c, d])
    ]
    assert [s["state"] for s in sums] == ["done", "failed", "failed", "failed"]
    assert all("single out" in s["error"] for s in sums[1:])
    # D joined the three refused ones but never sent a masked input: refunded, so
    # the failed attack leaves D's budget and party-set history as they were
    ledger = agents[3].state_dir / "privacy.json"
    failed = {s["id"] for s in sums[1:]}
    wait_for(
        lambda: not failed & {a["computation"] for a in _answers(ledger, "plant")},
        20,
        what="D refunding the refused computations",
    )
    assert sums[0]["id"] in {
        a["computation"] for a in _answers(agents[0].state_dir / "privacy.json", "plant")
    }

    # differential privacy: the result states its epsilon; the budget outlives a restart
    noisy = compute(
        server, ids, dataset="private", op="quantile", column="temp",
        bins=[float(b) for b in range(0, 41, 4)], quantiles=[0.5], epsilon=0.6,
    )  # fmt: skip
    assert noisy["state"] == "done", noisy
    assert noisy["result"]["epsilon"] == 0.6 and noisy["epsilon_spent"] == 0.6
    assert noisy["result"]["noise_scale"] == pytest.approx(2 / 0.6)
    assert abs(noisy["result"]["quantiles"]["0.5"] - float(np.median(rows[:, 0]))) < 8
    agents[0].stop()
    agents[0].start()
    with server.client() as client:
        wait_for(
            lambda: any(
                d["is_online"] and d["privacy"]["epsilon_spent"] == pytest.approx(0.6)
                for d in client.datasets(dataset="private", device=ids[0])
            ),
            30,
            what="the restarted agent reporting its spent epsilon",
        )
        with pytest.raises(ApiError) as refused:
            client.compute("private", "count", "temp", devices=ids, epsilon=0.6)
    assert refused.value.status == 403 and "budget" in str(refused.value)
