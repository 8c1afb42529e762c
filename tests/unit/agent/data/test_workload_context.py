"""The workload context (``EDGEFLEET_CONTEXT_URL``): the pure builder and
peripheral filter, and the endpoint served for real on 127.0.0.1 (no server,
no engine): the pinned shape, per-job tokens, methods, and a job that is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.data.context import build, visible_peripherals
from edgefleet.agent.data.service import DataService
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.messages import DesiredState, Peripheral
from edgefleet.wire.workload import DeviceContext, JobAssignment
from tests.support.agents import agent_context


def assignment(job: str, device: DeviceContext | None = None) -> JobAssignment:
    spec = AppSpec.model_validate(
        {"services": {"probe": {"runtime": "process", "command": ["true"]}}}
    )
    return JobAssignment(
        job_id=job, project_id="default", application="probe", version="3", spec=spec, device=device
    )


CAMERA = Peripheral(kind="camera", name="video0", path="/dev/video0")
SERIAL = Peripheral(kind="serial", name="ttyUSB0", path="/dev/ttyUSB0")
GPU = Peripheral(kind="gpu", name="renderD128", path="/dev/dri/renderD128")
WIFI = Peripheral(kind="wifi", name="wlan0")


def test_only_consented_peripherals_are_visible() -> None:
    policy = DevicePolicy(
        peripherals=["/dev/video0"], peripheral_kinds=["camera"], host_paths=["/dev/dri"]
    )
    shown = visible_peripherals([CAMERA, SERIAL, GPU, WIFI], policy)
    assert shown == [CAMERA, GPU]  # consented path, path under an allowed host path
    assert visible_peripherals([CAMERA, WIFI], DevicePolicy()) == []
    assert visible_peripherals([WIFI], DevicePolicy(peripheral_kinds=["wifi"])) == [WIFI]
    # Privileged does not widen it, and duplicates collapse.
    assert visible_peripherals(
        [SERIAL, CAMERA, CAMERA], DevicePolicy(privileged=True, peripherals=["/dev/video0"])
    ) == [CAMERA]


def test_build_uses_the_assignment_and_falls_back_to_the_enrolled_name() -> None:
    described = DeviceContext(name="cam-7", labels={"site": "a"}, metadata={"geo": [1.5, 2]})
    ctx = build("d1", "enrolled", assignment("j1", described), "rev1", [CAMERA])
    assert ctx.model_dump(mode="json") == {
        "device": {
            "id": "d1",
            "name": "cam-7",
            "labels": {"site": "a"},
            "metadata": {"geo": [1.5, 2]},
            "peripherals": [CAMERA.model_dump(mode="json")],
        },
        "job": {
            "id": "j1",
            "version": "3",
            "revision": "rev1",
            "project": "default",
            "application": "probe",
        },
    }
    older = build("d1", "enrolled", assignment("j1"), "rev1", [])
    assert older.device.name == "enrolled" and older.device.labels == {}
    assert older.device.metadata == {}


def test_device_context_is_not_part_of_the_revision() -> None:
    """A label change must never restart a workload."""
    plain = assignment("j1")
    labelled = assignment("j1", DeviceContext(name="x", labels={"a": "b"}))
    assert revision_of(plain) == revision_of(labelled)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[DataService]:
    described = DeviceContext(name="cam-7", labels={"site": "a"}, metadata={"floor": 2})
    jobs = {"j1": assignment("j1", described), "j2": assignment("j2", described)}
    ctx = await agent_context(
        tmp_path,
        desired=DesiredState(generation=1, jobs=list(jobs.values())),
        data_quota_mb=1,
        peripheral=["sensor=/dev/ttyFAKE9"],
    )
    data = DataService(ctx)
    await data.start()
    yield data
    await data.stop()


async def test_context_endpoint_answers_the_pinned_shape(service: DataService) -> None:
    env = await service.env("j1", "probe")
    assert env["EDGEFLEET_CONTEXT_URL"] == env["EDGEFLEET_DATA_URL"] + "/context"
    async with httpx.AsyncClient() as http:
        answer = await http.get(env["EDGEFLEET_CONTEXT_URL"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"device", "job"}
    assert body["device"]["id"] == "d1" and body["device"]["name"] == "cam-7"
    assert body["device"]["labels"] == {"site": "a"}
    assert body["device"]["metadata"] == {"floor": 2}
    assert body["job"]["id"] == "j1" and body["job"]["version"] == "3"
    assert body["job"]["revision"] == revision_of(assignment("j1"))
    paths = [p["path"] for p in body["device"]["peripherals"]]
    # The declared peripheral is there; nothing this host has and the owner did
    # not consent to (no --allow-peripheral, no --allow-host-path) leaks.
    assert paths == ["/dev/ttyFAKE9"]


async def test_context_is_per_job_and_refuses_everything_else(service: DataService) -> None:
    own = service.url("j1") + "/context"
    other_token = service.token("j2")
    async with httpx.AsyncClient() as http:
        # j1's path with j2's token, a forged token, a job that is not here.
        swapped = await http.get(own.replace(service.token("j1"), other_token))
        assert swapped.status_code == 404
        assert "unknown job or token" in swapped.json()["error"]
        forged = await http.get(own.replace(service.token("j1"), "A" * 32))
        assert forged.status_code == 404
        gone = await http.get(service.url("j9") + "/context")
        assert gone.status_code == 404 and "not on this device" in gone.json()["error"]
        post = await http.post(own, json={"a": 1})
        assert post.status_code == 405 and "GET the context" in post.json()["error"]
        # j2 with its own token sees j2, never j1.
        two = await http.get(service.url("j2") + "/context")
        assert two.json()["job"]["id"] == "j2"
    # Nothing was stored by any of it.
    assert service.buffer.pending == 0
