"""A developer tries to own the device through a job; the device's policy says no.

Real processes and a real Podman engine: one server, two agents on it, shared
by every case of this module:

- ``locked``: an agent as installed, no ``--allow-…`` flag;
- ``open``: its owner allows the process runtime (run as ``nobody``, the
  default for a root agent), ``--allow-cap DAC_READ_SEARCH``, external
  volumes named ``edgefleet-policy-*`` (and, to show it does not help,
  ``ef-*``) and a declared peripheral ``sensor=/dev/null``; nothing else.

Each hostile job is created by a developer of the project and targets both
devices; a refusal must be per device, in plain words naming the flag, in the
job's status, with nothing left on the engine.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.podman import containers, podman
from tests.support.procs import (
    AgentProc,
    Proc,
    ServerProc,
    kill_process_workloads,
    stop_all,
    wait_for,
)

pytestmark = pytest.mark.podman

IMAGE = "localhost/ef-busybox:test"
PHOTOS = "edgefleet-policy-photos"
PASSWORD = "correct horse battery staple"
MiB = 1024 * 1024


@dataclass
class Devices:
    server: ServerProc
    developer: str  # API token of a developer of the project
    locked: AgentProc
    open: AgentProc
    locked_id: str
    open_id: str

    def http(self, token: str | None = None) -> httpx.Client:
        return self.server.http(token or self.developer)

    def deploy(self, name: str, compose: str) -> dict[str, Any]:
        """Upload ``compose`` and start a job on both devices, as the developer."""
        with self.http() as http:
            created = http.post(
                "/api/v1/applications",
                json={"project": "default", "name": name, "version": "1", "compose": compose},
            )
            assert created.status_code == 201, created.text
            job = http.post(
                "/api/v1/jobs",
                json={
                    "application": name,
                    "version": "1",
                    "devices": [self.locked_id, self.open_id],
                },
            )
            assert job.status_code == 201, job.text
            return dict(job.json())

    def wait_running(self, job_id: str, timeout: float = 90) -> None:
        """Until the open device runs the job; a failure shows its row and log."""
        seen: dict[str, Any] = {}

        def running() -> bool:
            seen.update(self.rows(job_id)["open"])
            return seen.get("state") == "running"

        try:
            wait_for(running, timeout, what="the open device runs the job")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{seen}\n{self.open.log()[-3000:]}") from exc

    def rows(self, job_id: str) -> dict[str, dict[str, Any]]:
        with self.http() as http:
            job = http.get(f"/api/v1/jobs/{job_id}").json()
        names = {self.locked_id: "locked", self.open_id: "open"}
        return {names[row["device"]]: row for row in job["devices"]}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def engine_objects(job_id: str) -> list[str]:
    """Everything the engine holds for a job: containers, networks, volumes."""
    found = [f"container {c['Names']}" for c in containers(job_id)]
    for kind in ("network", "volume"):
        listed = podman(
            kind, "ls", "--format", "json", "--filter", f"label=io.edgefleet.job={job_id}"
        ).stdout
        found += [
            f"{kind} {item.get('Name') or item.get('name')}" for item in json.loads(listed or "[]")
        ]
    return found


def _remove_device_objects(device_ids: set[str]) -> None:
    """Only what this module's agents made (other sessions may share the engine)."""
    for device in device_ids:
        label = f"label=io.edgefleet.device={device}"
        ids = podman("ps", "-aq", "--filter", label, check=False).stdout.split()
        if ids:
            podman("rm", "-f", "-t", "0", *ids, check=False)
        nets = podman("network", "ls", "-q", "--filter", label, check=False).stdout.split()
        if nets:
            podman("network", "rm", "-f", *nets, check=False)
        vols = podman("volume", "ls", "-q", "--filter", label, check=False).stdout.split()
        if vols:
            podman("volume", "rm", "-f", *vols, check=False)


@pytest.fixture(scope="module")
def devices(podman_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devices]:
    workdir = tmp_path_factory.mktemp("policy")
    # The open agent's state dir sits where `nobody` may walk (pytest's tmp dirs
    # are closed to it), so only the agent's own protections keep it out.
    public = Path(tempfile.mkdtemp(prefix="ef-policy-", dir="/tmp"))
    public.chmod(0o711)
    (public / "public.txt").write_text("anyone may read this\n")
    (public / "public.txt").chmod(0o644)
    podman("volume", "rm", "-f", PHOTOS, check=False)
    podman("volume", "create", "--label", "purpose=edgefleet-test", PHOTOS)
    procs: list[Proc] = []
    try:
        server = ServerProc(workdir, name="policy-server")
        procs.append(server)
        server.start()
        with server.http() as admin:
            _ok(admin.post("/api/v1/users", json={"name": "pol-dev", "password": PASSWORD}))
            _ok(
                admin.post(
                    "/api/v1/projects/default/members",
                    json={"user": "pol-dev", "role": "developer"},
                )
            )
            developer = _ok(admin.post("/api/v1/tokens", json={"user": "pol-dev", "name": "t"}))
            key = _ok(admin.post("/api/v1/provisioning-keys", json={"project": "default"}))["key"]
        env = {"DOCKER_HOST": podman_engine.url}
        locked = AgentProc(
            workdir,
            [server.url],
            key=key,
            name="locked",
            runtime="docker",
            env=env,
            process_user=None,
        )
        opened = AgentProc(
            public,
            [server.url],
            key=key,
            name="open",
            runtime="docker",
            env=env,
            process_user=None,  # the agent's default: nobody, as it runs as root
            extra_args=[
                "--allow-process",
                "--allow-cap",
                "DAC_READ_SEARCH",
                "--allow-external-volume",
                "edgefleet-policy-*",
                "--allow-external-volume",
                "ef-*",
                "--peripheral",
                "sensor=/dev/null",
            ],
        )
        for agent in (locked, opened):
            procs.append(agent)
            agent.start()
        found = Devices(
            server,
            developer["token"],
            locked,
            opened,
            locked.wait_enrolled(),
            opened.wait_enrolled(),
        )

        def online() -> bool:
            with server.http() as admin:
                items = admin.get("/api/v1/devices").json()["items"]
            return len(items) == 2 and all(d["is_online"] and d["policy"] for d in items)

        wait_for(online, 30, what="both devices online")
        yield found
    finally:
        ids = set()
        for proc in procs:
            if isinstance(proc, AgentProc) and (proc.state_dir / "device.json").exists():
                ids.add(proc.device_id())
        stop_all(procs)
        kill_process_workloads(workdir)
        kill_process_workloads(public)
        _remove_device_objects(ids)
        podman("volume", "rm", "-f", PHOTOS, check=False)
        shutil.rmtree(public, ignore_errors=True)


def test_the_devices_report_their_policy(devices: Devices) -> None:
    with devices.http() as http:
        locked = http.get(f"/api/v1/devices/{devices.locked_id}").json()["policy"]
        opened = http.get(f"/api/v1/devices/{devices.open_id}").json()["policy"]
    assert locked["process"] is False and locked["capabilities"] == []
    assert locked["peripherals"] == [] and locked["external_volumes"] == []
    assert (locked["default_memory"], locked["max_memory"]) == (512 * MiB, 2048 * MiB)
    assert (locked["default_pids"], locked["max_pids"]) == (512, 4096)
    assert opened["process"] is True and opened["process_user"] == "nobody"
    assert opened["capabilities"] == ["DAC_READ_SEARCH"] and opened["peripherals"] == ["/dev/null"]
    assert opened["privileged"] is False


def test_the_device_page_shows_the_policy(devices: Devices) -> None:
    with httpx.Client(base_url=devices.server.url, timeout=30) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "username": "pol-dev", "password": PASSWORD}
        assert browser.post("/login", data=form).status_code in (302, 303)
        opened = browser.get(f"/devices/{devices.open_id}")
        locked = browser.get(f"/devices/{devices.locked_id}")
    assert opened.status_code == 200 and locked.status_code == 200
    section = opened.text[opened.text.index('id="policy-h"') :]
    for shown in (
        "allowed, as user <code>nobody</code>",
        "DAC_READ_SEARCH",
        "<code>edgefleet-policy-*</code>",
        "<code>/dev/null</code>",
        "512 MiB by default, at most 2 GiB",
    ):
        assert shown in section, shown
    locked_section = locked.text[locked.text.index('id="policy-h"') :]
    assert "<dt>Process runtime</dt><dd>not allowed</dd>" in locked_section
    assert "<dt>Extra capabilities</dt><dd>none</dd>" in locked_section


def test_a_process_job_is_refused_and_where_allowed_cannot_read_the_agents_secrets(
    devices: Devices,
) -> None:
    state = devices.open.state_dir
    probe = (
        f"cat {state.parent}/public.txt >/dev/null && echo 'read public.txt'; "
        f"for f in device.json desired.json data/secret; do "
        f'cat {state}/$f >/dev/null 2>&1 && echo "read $f" || echo "denied $f"; done; '
        "echo \"limits $(awk '/Max data size/ {print $4} /Max processes/ {print $3}' "
        '/proc/self/limits | tr "\\n" " ")"; '
        'echo "uid $(id -u)"; echo "cwd $(pwd)"; exec sleep 100000'
    )
    compose = (
        "services:\n  probe:\n    x-edgefleet-runtime: process\n"
        f"    command: {json.dumps(['sh', '-c', probe.replace('$', '$$')])}\n"
    )
    job = devices.deploy("process-probe", compose)
    locked = {row["device"]: row for row in job["devices"]}[devices.locked_id]
    assert locked["state"] == "failed" and not locked["eligible"]
    assert locked["error"] == (
        "cannot run here: service probe: the process runtime is not allowed on this device "
        "(its agent needs --allow-process or --runtime process)"
    )
    devices.wait_running(job["id"], 60)
    assert (state / "device.json").exists() and (state / "data" / "secret").exists()

    def output() -> list[str]:
        logs = list((state / "processes").glob(f"ef-{job['id']}-*/stdout.log"))
        lines = logs[0].read_text().splitlines() if logs else []
        return lines if any(line.startswith("cwd") for line in lines) else []

    lines = wait_for(output, 20, what="the probe's output")
    assert "read public.txt" in lines  # the path is walkable: only the agent's guard stops it
    assert {"denied device.json", "denied desired.json", "denied data/secret"} <= set(lines)
    assert not [line for line in lines if line.startswith("read ") and line != "read public.txt"]
    assert "uid 65534" in lines
    assert f"limits {512 * MiB} 512 " in lines  # the device's defaults, via prlimit
    cwd = next(line.split(" ", 1)[1] for line in lines if line.startswith("cwd "))
    assert not Path(cwd).resolve().is_relative_to(state.resolve())
    assert Path(cwd).stat().st_uid == 65534 and Path(cwd).stat().st_mode & 0o077 == 0
    assert state.stat().st_mode & 0o077 == 0
    assert not [o for o in engine_objects(job["id"]) if devices.locked_id in o]


REFUSED_EVERYWHERE: dict[str, tuple[str, str]] = {
    # case: (service s settings, the refusal both devices give)
    "privileged": ("privileged: true", "service s: privileged is not allowed on this device"),
    "bridge": (
        "network_mode: bridge",
        "service s: network_mode: bridge is not allowed on this device "
        "(its agent needs --allow-privileged)",
    ),
    "seccomp-unconfined": (
        "security_opt: ['seccomp=unconfined']",
        "service s: security_opt seccomp=unconfined is not allowed on this device "
        "(its agent needs --allow-privileged)",
    ),
    "label-spc_t": (
        "security_opt: ['label=type:spc_t']",
        "service s: security_opt label=type:spc_t is not allowed on this device",
    ),
    "inline-seccomp": (
        """security_opt: ['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']""",
        """service s: security_opt seccomp={"defaultAction": "SCMP_ACT_ALLOW"} is not allowed""",
    ),
    "cap-sys-admin": (
        "cap_add: [SYS_ADMIN]",
        "service s: cap_add SYS_ADMIN is not allowed on this device "
        "(its agent needs --allow-cap SYS_ADMIN or --allow-privileged)",
    ),
    "pids-unlimited": (
        "pids_limit: -1",
        "service s: pids_limit -1 (no limit) is not allowed on this device (at most 4096; "
        "its agent needs --max-pids none)",
    ),
    "memory-over-max": (
        "mem_limit: 8g",
        "service s: mem_limit 8 GiB is more than this device allows (2 GiB; its agent's "
        "--max-memory)",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_EVERYWHERE))
def test_what_no_flag_given_allows_is_refused_on_both_devices(devices: Devices, case: str) -> None:
    snippet, says = REFUSED_EVERYWHERE[case]
    compose = f"services:\n  s:\n    image: {IMAGE}\n    command: [sleep, '1000']\n    {snippet}\n"
    job = devices.deploy(f"hostile-{case}", compose)
    rows = devices.rows(job["id"])
    for name in ("locked", "open"):
        row = rows[name]
        assert row["state"] == "failed" and not row["eligible"], (name, row)
        assert row["error"].startswith("cannot run here: ") and says in row["error"], row["error"]
    assert engine_objects(job["id"]) == []


def test_a_jobs_own_volume_is_refused_even_where_a_glob_allows_it(devices: Devices) -> None:
    compose = (
        f"services:\n  s:\n    image: {IMAGE}\n    command: [sleep, '1000']\n"
        "    volumes: [loot:/loot]\n"
        "volumes:\n  loot:\n    external: true\n    name: ef-victim-device-data\n"
    )
    job = devices.deploy("hostile-volume", compose)
    rows = devices.rows(job["id"])
    assert rows["open"]["error"] == (
        "cannot run here: volume loot: external volume ef-victim-device-data is named like a "
        "job's own volume (ef-...), which no job may mount"
    )
    assert (
        rows["locked"]["state"] == "failed" and "ef-victim-device-data" in rows["locked"]["error"]
    )
    assert engine_objects(job["id"]) == []


ALLOWED_BY_OWNER = f"""
services:
  reader:
    image: {IMAGE}
    command: [sleep, "100000"]
    cap_add: [DAC_READ_SEARCH]
    init: true
  album:
    image: {IMAGE}
    command: [sleep, "100000"]
    volumes: ["photos:/photos:ro"]
    init: true
  sensor:
    image: {IMAGE}
    command: [sleep, "100000"]
    devices: ["/dev/null:/dev/sensor"]
    init: true
volumes:
  photos:
    external: true
    name: {PHOTOS}
"""


def test_capability_volume_and_peripheral_run_only_where_the_owner_allows(
    devices: Devices,
) -> None:
    job = devices.deploy("owner-allows", ALLOWED_BY_OWNER)
    locked = {row["device"]: row for row in job["devices"]}[devices.locked_id]
    assert locked["state"] == "failed" and not locked["eligible"]
    for words in (
        "service reader: cap_add DAC_READ_SEARCH is not allowed on this device "
        "(its agent needs --allow-cap DAC_READ_SEARCH or --allow-privileged)",
        "service sensor: device /dev/null is not a peripheral this device's owner allows "
        "(its agent needs --allow-peripheral KIND, or --peripheral KIND=/dev/null",
        f"volume photos: external volume {PHOTOS} is not allowed on this device "
        f"(its agent needs --allow-external-volume {PHOTOS})",
    ):
        assert words in locked["error"], (words, locked["error"])
    devices.wait_running(job["id"])
    assert not [o for o in engine_objects(job["id"]) if devices.locked_id in o]
    found = {
        c["Config"]["Labels"]["io.edgefleet.service"]: c
        for c in json.loads(
            podman("inspect", *[str(c["Id"]) for c in containers(job["id"])]).stdout
        )
    }
    assert set(found) == {"reader", "album", "sensor"}
    assert "DAC_READ_SEARCH" in "".join(found["reader"]["HostConfig"]["CapAdd"] or [])
    photos = {m["Destination"]: m for m in found["album"]["Mounts"]}["/photos"]
    assert photos["Name"] == PHOTOS and photos["RW"] is False
    device = found["sensor"]["HostConfig"]["Devices"][0]
    assert (device["PathOnHost"], device["PathInContainer"]) == ("/dev/null", "/dev/sensor")
    for container in found.values():  # the device's default limits, on every workload
        assert container["HostConfig"]["Memory"] == 512 * MiB
        assert container["HostConfig"]["PidsLimit"] == 512
    with devices.http() as http:
        assert http.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
