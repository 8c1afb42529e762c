"""Can this device run this application? The pure judgement the scheduler
makes per (application, kind of device): each refusal in the words an
operator sees, the order in which they are checked, and the key that lets
devices of one kind share a judgement."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

from edgefleet.server.jobs.eligibility import facts_key, why_not
from edgefleet.spec.compose import parse
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy
from edgefleet.wire.messages import DeviceFacts

MiB = 1024 * 1024
CONTAINER = "services:\n  web:\n    image: nginx\n"
PROCESS = "services:\n  p:\n    x-edgefleet-runtime: process\n    command: [sleep, '1']\n"
OPEN = DevicePolicy(process=True)


def app(compose: str, requires: str = "") -> AppSpec:
    text = compose + (f"x-edgefleet:\n  requires:\n{requires}" if requires else "")
    spec, findings = parse(dedent(text))
    assert spec is not None, findings
    return spec


def device(**facts: Any) -> DeviceFacts:
    facts.setdefault("runtimes", ["docker"])
    return DeviceFacts.model_validate(facts)


def test_a_plain_container_app_runs_on_a_container_device() -> None:
    assert why_not(app(CONTAINER), device()) is None
    assert why_not(app(CONTAINER), device(runtimes=["sim"])) is None  # the simulator runs both


def test_a_container_app_is_refused_where_only_processes_run() -> None:
    assert why_not(app(CONTAINER), device(runtimes=["process"])) == (
        "needs a container runtime; this device offers: process"
    )
    assert why_not(app(CONTAINER), device(runtimes=[])) == (
        "needs a container runtime; this device offers: none"
    )


def test_a_process_app_names_the_owners_flag_when_the_policy_forbids_it() -> None:
    missing = why_not(app(PROCESS), device(runtimes=["docker"]))
    assert missing == "needs the process runtime, which this device does not offer"
    closed = why_not(app(PROCESS), device(runtimes=["docker"], policy=DevicePolicy()))
    assert closed is not None and "--allow-process" in closed
    assert why_not(app(PROCESS), device(runtimes=["process"], policy=OPEN)) is None


def test_required_runtime_and_arch_are_matched_and_said() -> None:
    spec = app(CONTAINER, "    runtime: [sim]\n")
    assert why_not(spec, device(runtimes=["docker"])) == (
        "requires runtime sim; this device offers: docker"
    )
    assert why_not(spec, device(runtimes=["sim", "docker"])) is None

    arm = app(CONTAINER, "    arch: [linux/arm64, linux/arm/v7]\n")
    assert why_not(arm, device(resources={"arch": "arm64"})) is None
    assert why_not(arm, device(resources={"arch": "arm"})) is None  # the variant is dropped
    assert why_not(arm, device(resources={"arch": "x86_64"})) == (
        "requires arch arm64 or arm; this device is x86_64"
    )
    assert why_not(arm, device()) == "requires arch arm64 or arm; this device is unknown"


def test_memory_is_compared_in_bytes_and_said_in_units() -> None:
    spec = app(CONTAINER, "    memory: 2g\n")
    assert why_not(spec, device(resources={"memory": 512 * MiB})) == (
        "requires 2.0 GiB of memory; this device has 512.0 MiB"
    )
    assert why_not(spec, device(resources={"memory": 2048 * MiB})) is None
    # a device that does not report its memory is given the benefit of the doubt
    assert why_not(spec, device()) is None


def test_peripherals_match_by_kind_or_by_name() -> None:
    spec = app(CONTAINER, "    peripherals: [camera, ttyUSB0]\n")
    camera = {"kind": "camera", "name": "video0", "path": "/dev/video0"}
    serial = {"kind": "serial", "name": "ttyUSB0", "path": "/dev/ttyUSB0"}
    assert why_not(spec, device(peripherals=[camera])) == (
        "requires peripheral ttyUSB0, which this device does not have"
    )
    assert why_not(spec, device(peripherals=[])) == (
        "requires peripheral camera, ttyUSB0, which this device does not have"
    )
    assert why_not(spec, device(peripherals=[camera, serial])) is None


def test_a_runtime_refusal_comes_before_the_requirements() -> None:
    spec = app(CONTAINER, "    arch: [arm64]\n    peripherals: [camera]\n")
    reason = why_not(spec, device(runtimes=["process"], resources={"arch": "x86_64"}))
    assert reason is not None and reason.startswith("needs a container runtime")


def test_the_owners_policy_is_judged_last_and_only_when_reported() -> None:
    privileged = app("services:\n  s:\n    image: x\n    privileged: true\n")
    refused = why_not(privileged, device(policy=DevicePolicy()))
    assert refused is not None and "privileged" in refused
    assert why_not(privileged, device(policy=DevicePolicy(privileged=True))) is None
    # an agent too old to report a policy refuses by itself: the server does not guess
    assert why_not(privileged, device()) is None


def test_devices_of_one_kind_share_a_key_that_ignores_what_moves() -> None:
    base = {
        "runtimes": ["docker"],
        "resources": {"arch": "arm64", "memory": 1024, "disk_free": 10, "hostname": "a"},
        "peripherals": [{"kind": "camera", "name": "video0"}, {"kind": "gpu", "name": "g"}],
    }
    moved = {**base, "resources": {**base["resources"], "disk_free": 99, "hostname": "b"}}
    reordered = {**base, "peripherals": list(reversed(base["peripherals"]))}
    assert facts_key(base) == facts_key(moved) == facts_key(reordered)
    for changed in (
        {**base, "runtimes": ["process"]},
        {**base, "resources": {**base["resources"], "arch": "x86_64"}},
        {**base, "resources": {**base["resources"], "memory": 2048}},
        {**base, "peripherals": base["peripherals"][:1]},
        {**base, "policy": {"process": True}},
    ):
        assert facts_key(changed) != facts_key(base)
    assert facts_key({}) == facts_key({"resources": None, "peripherals": None})
