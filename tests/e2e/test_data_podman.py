"""Nothing lost, nothing twice: two devices (network namespaces, each with its
own Podman and a veth to the host) run a busybox workload that posts a
numbered record every 100 ms, retrying each POST until it gets a 2xx, as any
robust client would. Meanwhile the agents are killed -9, then the server,
then the devices' links are cut, twice over, each outage a few seconds. At
the end the server holds every number exactly once per device, in order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet
from tests.support.netns import Namespace, isolated_namespaces
from tests.support.podman import IMAGE, PodmanService, ensure_image
from tests.support.procs import AgentProc, wait_for

pytestmark = pytest.mark.podman

# Compose interpolation turns $$ into $.
COUNTER = """
i=0
while true; do
  i=$$((i+1))
  until timeout 10 wget -q -O /dev/null --header 'Content-Type: application/json' \
      --post-data "{\\"n\\":$$i,\\"id\\":\\"n$$i\\"}" "$$EDGEFLEET_DATA_URL?stream=numbers"; do
    sleep 0.2
  done
  sleep 0.1
done
"""


@pytest.fixture
def devices(
    tmp_path: Path, podman_engine: Any
) -> Iterator[tuple[list[Namespace], list[PodmanService]]]:
    """Two devices behind their own links: network namespaces with a veth to
    the host, each with a Podman engine whose bridges live in its namespace."""
    ensure_image(tmp_path)
    with isolated_namespaces(2) as spaces:
        engines = [PodmanService(tmp_path, ns.name) for ns in spaces]
        for engine in engines:
            engine.start()
        try:
            yield spaces, engines
        finally:
            for engine in engines:
                engine.cleanup()
                engine.stop()


def per_device(server: Any, job: str) -> dict[str, dict[str, Any]]:
    with server.client() as client:
        items = client.data_summary(job)["items"]
    return {i["device"]: i for i in items if i["stream"] == "numbers"}


def test_every_number_exactly_once_through_kills_and_cuts(
    devices: tuple[list[Namespace], list[PodmanService]], fleet: Fleet
) -> None:
    spaces, engines = devices
    server = fleet.start_server(extra_args=["--host", "0.0.0.0"])
    key = fleet.key(labels={"role": "counter"})
    agents: list[AgentProc] = [
        fleet.start_agent(
            f"dev{i}",
            key=key,
            servers=[f"http://{ns.host_ip}:{server.port}"],
            runtime="docker",
            env={"DOCKER_HOST": engine.url},
            netns=ns.name,
        )
        for i, (ns, engine) in enumerate(zip(spaces, engines, strict=True))
    ]
    ids = [a.wait_enrolled() for a in agents]
    spec = {
        "services": {
            "counter": {"image": IMAGE, "command": ["sh", "-c", COUNTER]},
        }
    }
    with server.client() as client:
        client.create_application("counter", "1", spec=spec)
        job = client.create_job("counter", selector={"role": "counter"})["id"]

    def grew(before: dict[str, int], by: int) -> bool:
        now = per_device(server, job)
        return all(now.get(d, {}).get("records", 0) >= before.get(d, 0) + by for d in ids)

    def counts() -> dict[str, int]:
        return {d: i["records"] for d, i in per_device(server, job).items()}

    wait_for(lambda: grew({}, 10), 120, what="records flowing from both devices")
    for _ in range(2):
        before = counts()
        for agent in agents:
            agent.kill()
        time.sleep(2)
        for agent in agents:
            agent.start()
        wait_for(lambda b=before: grew(b, 10), 90, what="records after agents were killed")

        before = counts()
        server.kill()
        time.sleep(3)
        server.start()
        wait_for(lambda b=before: grew(b, 10), 90, what="records after the server was killed")

        before = counts()
        for ns in spaces:
            ns.link(False)
        time.sleep(5)
        for ns in spaces:
            ns.link(True)
        wait_for(lambda b=before: grew(b, 10), 90, what="records after the network came back")

    with server.client() as client:
        client.cancel_job(job)

    def drained() -> bool:
        now = per_device(server, job)
        return all(
            d in now
            and now[d]["backlog"] == 0
            and now[d]["records"] == now[d]["accepted_on_device"]
            for d in ids
        )

    wait_for(drained, 120, what="every buffered record on the server")
    with server.http() as http:
        for device in ids:
            lines = http.get(
                f"/api/v1/jobs/{job}/data",
                params={"device": device, "stream": "numbers", "format": "jsonl"},
            ).text.splitlines()
            items = [json.loads(x) for x in lines]
            numbers = [i["record"]["n"] for i in items]
            assert numbers == list(range(1, len(numbers) + 1)), (device, numbers)
            seqs = [i["seq"] for i in items]
            assert seqs == sorted(set(seqs)), device
            assert len(numbers) > 60
        summary = http.get(f"/api/v1/jobs/{job}/data/summary").json()
        assert summary["evicted"] == 0
