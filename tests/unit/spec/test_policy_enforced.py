"""The device policy, rule by rule: what a default device refuses, in which
words, and what each of the owner's flags lets through (and nothing more).
Also the agent's side: its settings become one policy, and a refused job
makes the executor touch no runtime at all."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from edgefleet.agent.changes.executor import ChangeFailed, Executor
from edgefleet.agent.changes.plan import plan_job
from edgefleet.agent.facts import device_policy
from edgefleet.agent.health import HealthTracker
from edgefleet.agent.runtimes.base import RuntimeSet
from edgefleet.agent.settings import AgentSettings
from edgefleet.server.jobs.eligibility import why_not
from edgefleet.spec.compose import parse
from edgefleet.spec.model import AppSpec
from edgefleet.spec.policy import DevicePolicy, app_refusals, limits, refusals
from edgefleet.wire.messages import DeviceFacts, Peripheral
from edgefleet.wire.workload import JobAssignment

MiB = 1024 * 1024
DEFAULT = DevicePolicy(
    default_memory=512 * MiB, max_memory=2048 * MiB, default_pids=512, max_pids=4096
)


def app(compose: str) -> AppSpec:
    spec, _ = parse(dedent(compose))
    return spec


def one(snippet: str, *, volumes: str = "") -> AppSpec:
    return app(f"services:\n  s:\n    image: x\n    {snippet}\n{volumes}")


def refused(spec: AppSpec, policy: DevicePolicy = DEFAULT) -> str:
    return "; ".join(app_refusals(spec, policy))


# -- the process runtime ------------------------------------------------------------------

PROCESS = "services:\n  p:\n    x-edgefleet-runtime: process\n    command: [sleep, '1']\n"


def test_process_services_need_the_owners_consent() -> None:
    assert refused(app(PROCESS)) == (
        "service p: the process runtime is not allowed on this device "
        "(its agent needs --allow-process or --runtime process)"
    )
    assert refused(app(PROCESS), DEFAULT.model_copy(update={"process": True})) == ""


def test_a_process_service_cannot_pick_its_working_directory() -> None:
    spec = app(PROCESS + "    working_dir: /var/lib/edgefleet\n")
    allowed = DEFAULT.model_copy(update={"process": True})
    assert "working_dir is chosen by the agent" in refused(spec, allowed)


def test_the_server_names_the_flag_when_a_device_offers_no_process_runtime() -> None:
    facts = DeviceFacts(runtimes=["docker"], policy=DEFAULT)
    reason = why_not(app(PROCESS), facts)
    assert reason is not None and "--allow-process" in reason
    # An agent too old to report a policy is left to refuse by itself.
    old = DeviceFacts.model_validate({"runtimes": ["docker", "process"], "policy": {}})
    assert old.policy is None and why_not(app(PROCESS), old) is None
    # An older agent's smaller dict parses, and is judged strictly.
    older = DeviceFacts.model_validate(
        {"runtimes": ["docker", "process"], "policy": {"privileged": False, "host_paths": []}}
    )
    assert older.policy is not None
    assert "--allow-process" in (why_not(app(PROCESS), older) or "")


# -- capabilities -------------------------------------------------------------------------


def test_capabilities_are_an_allowlist() -> None:
    spec = one("cap_add: [CHOWN, NET_BIND_SERVICE, cap_net_raw]")
    assert refused(spec) == ""  # Docker's default set is free
    for cap in ("DAC_READ_SEARCH", "NET_ADMIN", "SYS_PTRACE", "SYS_ADMIN", "SYS_MODULE"):
        assert refused(one(f"cap_add: [{cap}]")) == (
            f"service s: cap_add {cap} is not allowed on this device "
            f"(its agent needs --allow-cap {cap} or --allow-privileged)"
        )


def test_allow_cap_grants_that_capability_only() -> None:
    policy = DEFAULT.model_copy(update={"capabilities": ["DAC_READ_SEARCH"]})
    assert refused(one("cap_add: [CAP_DAC_READ_SEARCH]"), policy) == ""
    assert "cap_add SYS_ADMIN" in refused(one("cap_add: [DAC_READ_SEARCH, SYS_ADMIN]"), policy)
    # ALL is never granted one by one.
    all_caps = policy.model_copy(update={"capabilities": ["ALL"]})
    assert "cap_add ALL is not allowed on this device (its agent needs --allow-privileged)" in (
        refused(one("cap_add: [ALL]"), all_caps)
    )
    assert refused(one("cap_add: [ALL]"), DEFAULT.model_copy(update={"privileged": True})) == ""


# -- security_opt -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opt",
    [
        "seccomp=unconfined",
        "seccomp:unconfined",
        "apparmor=unconfined",
        "label=type:spc_t",
        "label:disable",
        "systempaths=unconfined",
        'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}',
        "unmask=ALL",
    ],
)
def test_security_options_that_loosen_isolation_need_privileged(opt: str) -> None:
    spec = one(f"security_opt: ['{opt}']")
    assert "is not allowed on this device (its agent needs --allow-privileged)" in refused(spec)
    assert refused(spec).startswith("service s: security_opt ")
    assert refused(spec, DEFAULT.model_copy(update={"privileged": True})) == ""


def test_no_new_privileges_is_always_fine() -> None:
    spec = one("security_opt: [no-new-privileges, 'no-new-privileges:true']")
    assert refused(spec) == ""


def test_profiles_come_only_from_where_the_owner_allows() -> None:
    seccomp = one("security_opt: ['seccomp=/etc/edgefleet/profiles/strict.json']")
    assert "seccomp profile /etc/edgefleet/profiles/strict.json is not allowed" in refused(seccomp)
    allowed = DEFAULT.model_copy(update={"security_profiles": ["/etc/edgefleet/profiles"]})
    assert refused(seccomp, allowed) == ""
    sideways = one("security_opt: ['seccomp=/etc/edgefleet/profiles/../../tmp/x.json']")
    assert "is not allowed" in refused(sideways, allowed)
    armor = one("security_opt: ['apparmor=edgefleet-strict']")
    assert "apparmor profile edgefleet-strict is not allowed" in refused(armor)
    named = DEFAULT.model_copy(update={"security_profiles": ["edgefleet-strict"]})
    assert refused(armor, named) == ""


# -- networks, namespaces, privileged -----------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "says"),
    [
        ("privileged: true", "privileged is not allowed"),
        ("network_mode: host", "network_mode: host is not allowed"),
        ("network_mode: bridge", "network_mode: bridge is not allowed"),
        ("pid: host", "pid: host is not allowed"),
    ],
)
def test_namespaces_and_privileged_need_allow_privileged(snippet: str, says: str) -> None:
    assert says in refused(one(snippet)) and "--allow-privileged" in refused(one(snippet))
    assert refused(one(snippet), DEFAULT.model_copy(update={"privileged": True})) == ""


def test_network_mode_none_is_fine() -> None:
    assert refused(one("network_mode: none")) == ""


# -- external volumes ---------------------------------------------------------------------


def external(name: str) -> AppSpec:
    return one(
        "volumes: [media:/media]",
        volumes=f"volumes:\n  media:\n    external: true\n    name: {name}\n",
    )


def test_external_volumes_only_where_the_owner_allows_their_names() -> None:
    assert refused(external("photos")) == (
        "volume media: external volume photos is not allowed on this device "
        "(its agent needs --allow-external-volume photos)"
    )
    globbed = DEFAULT.model_copy(update={"external_volumes": ["shared-*"]})
    assert refused(external("shared-photos"), globbed) == ""
    assert "external volume photos is not allowed" in refused(external("photos"), globbed)


def test_a_jobs_own_volume_is_never_external() -> None:
    everything = DEFAULT.model_copy(update={"external_volumes": ["*", "ef-*", "ef-j1-d1-data"]})
    assert refused(external("ef-j1-d1-data"), everything) == (
        "volume media: external volume ef-j1-d1-data is named like a job's own volume (ef-...), "
        "which no job may mount"
    )


def test_an_unused_external_volume_and_job_volumes_are_fine() -> None:
    spec = app(
        """
        services:
          s: {image: x, volumes: ["data:/data"]}
        volumes:
          data: {}
          spare: {external: true, name: other-jobs-data}
        """
    )
    assert refused(spec) == ""


# -- peripherals --------------------------------------------------------------------------


def test_host_devices_need_the_owners_consent() -> None:
    spec = one("devices: ['/dev/video0:/dev/video0']")
    assert refused(spec) == (
        "service s: device /dev/video0 is not a peripheral this device's owner allows (its agent "
        "needs --allow-peripheral KIND, or --peripheral KIND=/dev/video0, or --allow-host-path "
        "/dev/video0)"
    )
    assert refused(spec, DEFAULT.model_copy(update={"peripherals": ["/dev/video0"]})) == ""


def test_a_required_peripheral_must_be_one_the_owner_allows() -> None:
    spec = app("services:\n  s: {image: x}\nx-edgefleet:\n  requires: {peripherals: [camera]}\n")
    assert refused(spec) == (
        "requires peripheral camera, which this device's owner has not allowed jobs to use "
        "(its agent needs --allow-peripheral camera)"
    )
    assert refused(spec, DEFAULT.model_copy(update={"peripheral_kinds": ["camera"]})) == ""
    # On the server: a device that has a camera but did not consent says so.
    facts = DeviceFacts(
        runtimes=["docker"],
        peripherals=[Peripheral(kind="camera", name="video0", path="/dev/video0")],
        policy=DEFAULT,
    )
    assert "--allow-peripheral camera" in (why_not(spec, facts) or "")


def test_discovered_peripherals_are_handed_out_only_by_kind_or_declaration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = [
        Peripheral(kind="camera", name="video0", path="/dev/video0"),
        Peripheral(kind="serial", name="ttyUSB0", path="/dev/ttyUSB0"),
    ]
    monkeypatch.delenv("EDGEFLEET_PERIPHERAL", raising=False)
    quiet = device_policy(AgentSettings(), found)
    assert quiet.peripherals == [] and quiet.peripheral_kinds == []
    cams = device_policy(AgentSettings(allow_peripheral=["camera"]), found)
    assert cams.peripherals == ["/dev/video0"] and "camera" in cams.peripheral_kinds
    declared = device_policy(AgentSettings(peripheral=["sensor=/dev/null"]), found)
    assert declared.peripherals == ["/dev/null"] and "sensor" in declared.peripheral_kinds


# -- limits -------------------------------------------------------------------------------


def test_every_container_gets_the_devices_default_limits() -> None:
    service = one("command: [x]").services["s"]
    assert limits(service, DEFAULT) == (512 * MiB, 512)
    lowered = one("mem_limit: 64m\n    pids_limit: 32").services["s"]
    assert limits(lowered, DEFAULT) == (64 * MiB, 32)
    raised = one("mem_limit: 1g\n    pids_limit: 1000").services["s"]
    assert limits(raised, DEFAULT) == (1024 * MiB, 1000)
    assert refused(one("mem_limit: 1g\n    pids_limit: 1000")) == ""


def test_more_than_the_maximum_or_no_limit_is_refused() -> None:
    assert refused(one("mem_limit: 8g")) == (
        "service s: mem_limit 8 GiB is more than this device allows (2 GiB; its agent's "
        "--max-memory)"
    )
    assert refused(one("pids_limit: 100000")) == (
        "service s: pids_limit 100000 is more than this device allows (4096; its agent's --max-pids)"
    )
    for unlimited in ("-1", "0"):
        assert refused(one(f"pids_limit: {unlimited}")) == (
            "service s: pids_limit -1 (no limit) is not allowed on this device (at most 4096; "
            "its agent needs --max-pids none)"
        )
    free = DEFAULT.model_copy(update={"max_pids": None, "max_memory": None})
    assert refused(one("pids_limit: -1\n    mem_limit: 8g"), free) == ""
    assert limits(one("pids_limit: -1").services["s"], free) == (512 * MiB, None)


def test_limit_settings_parse_and_refuse_nonsense() -> None:
    settings = AgentSettings(default_memory="256M", max_memory="none", max_pids="unlimited")
    assert settings.memory_limits == (256 * MiB, None)
    assert settings.pids_limits == (512, None)
    with pytest.raises(ValueError, match="max_memory"):
        AgentSettings(max_memory="lots")
    with pytest.raises(ValueError, match="ALL needs --allow-privileged"):
        AgentSettings(allow_cap=["ALL"])
    assert AgentSettings(allow_cap=["cap_net_admin"]).allow_cap == ["NET_ADMIN"]


def test_the_policy_follows_the_flags() -> None:
    locked = device_policy(AgentSettings(runtime="docker"), [])
    assert not locked.process and locked.process_user is None
    assert (locked.default_memory, locked.max_memory) == (512 * MiB, 2048 * MiB)
    assert (locked.default_pids, locked.max_pids) == (512, 4096)
    assert device_policy(AgentSettings(runtime="process"), []).process
    opened = device_policy(AgentSettings(allow_process=True, process_user="nobody"), [])
    assert opened.process and opened.process_user == "nobody"


def test_a_service_lists_every_reason_at_once() -> None:
    spec = one("privileged: true\n    cap_add: [NET_ADMIN]\n    pids_limit: -1")
    reasons = refusals("s", spec.services["s"], DEFAULT)
    assert len(reasons) == 3 and all(r.startswith("service s: ") for r in reasons)


# -- the agent: nothing is touched for a refused job --------------------------------------


@dataclass
class Recorder:
    """A runtime that records every call: a refused job must cause none."""

    name: str = "docker"
    device_id: str = ""
    policy: DevicePolicy = field(default_factory=DevicePolicy)
    calls: list[str] = field(default_factory=list)

    def __getattr__(self, attr: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(attr)
            return [] if attr in ("workloads", "list_networks") else "id"

        return record


async def test_the_agent_refuses_before_creating_anything(tmp_path: Path) -> None:
    spec = app(
        """
        services:
          s: {image: x, cap_add: [DAC_READ_SEARCH], volumes: ["data:/data"]}
        volumes:
          data: {}
        networks:
          back: {}
        """
    )
    assignment = JobAssignment(job_id="j1", project_id="p", application="a", version="1", spec=spec)
    runtime = Recorder()
    runtimes = RuntimeSet(container=runtime, process=None)
    runtimes.set_policy(DEFAULT)
    executor = Executor(
        runtimes,
        "d1",
        HealthTracker(),
        phase=lambda job, phase: None,
        env_hooks=[],
    )
    plan = plan_job("j1", assignment, [], [], "d1")
    with pytest.raises(ChangeFailed) as caught:
        await executor.execute(plan, assignment)
    assert caught.value.message == (
        "cannot run here: service s: cap_add DAC_READ_SEARCH is not allowed on this device "
        "(its agent needs --allow-cap DAC_READ_SEARCH or --allow-privileged)"
    )
    assert runtime.calls == []
    # Allowed, the same plan goes to the engine.
    runtimes.set_policy(DEFAULT.model_copy(update={"capabilities": ["DAC_READ_SEARCH"]}))
    assert runtime.policy.capabilities == ["DAC_READ_SEARCH"]
    task = asyncio.create_task(executor.execute(plan, assignment))
    for _ in range(200):
        if "start" in runtime.calls:
            break
        await asyncio.sleep(0.01)
    task.cancel()  # the recorder runs nothing: the executor would wait for it to
    with contextlib.suppress(asyncio.CancelledError, ChangeFailed):
        await task
    assert runtime.calls[:1] == ["ensure_network"] and "create" in runtime.calls
