"""100 simulated devices (``edgefleet sim --fed``: the real agent code, one
process) compute a secure sum over the real server: SecAgg+ with its
neighbourhood graph on (k < n - 1), exact against the plaintext sum of the
devices' files, from one API call."""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from pathlib import Path

from edgefleet.agent.datasets import registry
from edgefleet.fed.graph import choose
from tests.conftest import Fleet
from tests.support.procs import Proc, base_env, wait_for

DEVICES = 100
ROWS = 20


def test_a_hundred_sim_devices_sum_exactly_over_the_real_server(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server(heartbeat=5.0)
    state = tmp_path / "sim"
    rng = random.Random(15)
    total = Decimal(0)
    for i in range(DEVICES):
        device_dir = state / f"sim-{i:05d}"
        device_dir.mkdir(parents=True)
        values = [f"{rng.uniform(-100, 100):.4f}" for _ in range(ROWS)]
        total += sum(Decimal(v) for v in values)
        (device_dir / "bench.csv").write_text("x\n" + "\n".join(values) + "\n")
        registry.save(device_dir, registry.new_spec("bench", str(device_dir / "bench.csv")))
    argv = [sys.executable, "-m", "edgefleet", "sim", "--server", server.url,
            "--devices", str(DEVICES), "--provisioning-key", fleet.key(),
            "--state-dir", str(state), "--supervise-every", "30", "--fed"]  # fmt: skip
    sim = Proc("sim", argv, tmp_path / "sim.log", base_env())
    fleet.procs.append(sim)
    sim.start()
    with server.client() as client:
        wait_for(
            lambda: (
                len(found := client.datasets(dataset="bench")) == DEVICES
                and all(d["is_online"] for d in found)
            ),
            240,
            interval=1.0,
            what=f"{DEVICES} devices offering 'bench'",
        )
        ids = sorted(d["device"] for d in client.datasets(dataset="bench"))
        started = time.monotonic()
        done = client.compute("bench", "sum", "x", devices=ids, round_timeout=30, wait=True)
        seconds = time.monotonic() - started
    print(f"{DEVICES} sim devices: API call to result {seconds:.2f} s")
    assert done["state"] == "done", done
    assert sorted(done["participants"]) == ids and done["dropped"] == []
    assert abs(Decimal(str(done["result"]["value"])) - total) < Decimal("1e-6")
    assert not choose(DEVICES, DEVICES // 2 + 1, 0.1, 0.05).complete  # the graph was on
    assert seconds < 60  # the 3 s figure is measured by benchmarks/fed.py on a quiet machine
