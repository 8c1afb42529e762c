"""A real Podman engine for tests: ``podman system service`` on a private
socket, speaking the Docker Engine API, with busybox images built locally
(there is no registry here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CONF = HERE / "podman" / "containers.conf"
IMAGE = "localhost/ef-busybox:test"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_CONF=str(CONF))
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env, check=check, timeout=120
    )


def _busybox_tar(workdir: Path) -> Path:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise RuntimeError(
            "busybox is not installed: run scripts/install-test-deps.sh (make test does)"
        )
    root = workdir / "rootfs"
    for sub in ("bin", "etc", "tmp", "var/www", "data", "root"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox" and not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "var" / "www" / "index.html").write_text("hello from busybox\n")
    tar_path = workdir / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(root, arcname=".")
    return tar_path


def ensure_image(workdir: Path) -> str:
    if podman("image", "exists", IMAGE, check=False).returncode == 0:
        return IMAGE
    tar_path = _busybox_tar(workdir)
    podman(
        "import",
        "--change",
        'CMD ["/bin/sh"]',
        "--change",
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        str(tar_path),
        IMAGE,
    )
    return IMAGE


class PodmanService:
    """``podman system service`` on a private socket; with ``netns``, inside a
    network namespace, so the containers' bridges live in that namespace (a
    device's engine, on a device behind NAT)."""

    def __init__(self, workdir: Path, netns: str | None = None) -> None:
        self.workdir = workdir
        self.netns = netns
        self.socket = workdir / f"podman-{netns or 'host'}.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        if shutil.which("podman") is None:
            raise RuntimeError(
                "podman is not installed: run scripts/install-test-deps.sh (make test does)"
            )
        env = dict(os.environ, CONTAINERS_CONF=str(CONF))
        # nsenter joins only the network namespace: `ip netns exec` would also remount
        # /sys without the cgroup hierarchy, which runc needs.
        prefix = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        with open(self.workdir / f"podman-service-{self.netns or 'host'}.log", "ab") as log:
            self.process = subprocess.Popen(
                [*prefix, "podman", "system", "service", "--time=0", self.url],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("podman system service did not start")
            time.sleep(0.1)
        purge_stale_dns()

    def cleanup(self) -> None:
        """Remove what this test session's agents made in the engine (containers,
        networks, volumes), told apart by their device label: other test sessions
        may share the engine's storage, and their objects are left alone."""
        devices = session_devices(self.workdir.parent)
        if not devices:
            return
        found = json.loads(
            podman(
                "ps",
                "-a",
                "--format",
                "json",
                "--filter",
                "label=io.edgefleet.managed=true",
                check=False,
            ).stdout
            or "[]"
        )
        ids = [str(c["Id"]) for c in found if _device(c.get("Labels")) in devices]
        if ids:
            podman("rm", "-f", "-t", "0", *ids, check=False)
        nets = json.loads(podman("network", "ls", "--format", "json", check=False).stdout or "[]")
        names = [str(n["name"]) for n in nets if _device(n.get("labels")) in devices]
        if names:
            podman("network", "rm", "-f", *names, check=False)
        purge_stale_dns()
        vols = json.loads(podman("volume", "ls", "--format", "json", check=False).stdout or "[]")
        names = [str(v["Name"]) for v in vols if _device(v.get("Labels")) in devices]
        if names:
            podman("volume", "rm", "-f", *names, check=False)
        if os.geteuid() == 0 and shutil.which("nft"):
            # The agents' isolation firewall tables (an agent leaves its table when it
            # stops: its containers would keep running on a real device).
            from edgefleet.agent.isolation import table_name

            for device in devices:
                subprocess.run(
                    ["nft", "delete", "table", "inet", table_name(device)],
                    capture_output=True,
                    check=False,
                )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


AARDVARK = Path("/run/containers/networks/aardvark-dns")


def purge_stale_dns() -> None:
    """Forget aardvark-dns records of agents' networks the engine no longer has.

    The record files are shared by every engine on the machine, those in device
    namespaces included; a network torn down after its namespace was gone keeps
    its file. A later network given the same gateway address then gets that
    stale file's answers (NXDOMAIN for its own services), so a test asking a
    service by name fails for what an earlier test left behind."""
    if not AARDVARK.is_dir():
        return
    files = [p for p in AARDVARK.iterdir() if p.name.startswith("ef-")]
    if not files:
        return
    nets = json.loads(podman("network", "ls", "--format", "json", check=False).stdout or "[]")
    known = {str(n["name"]) for n in nets}
    stale = [p for p in files if p.name not in known]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:  # aardvark-dns re-reads its records on SIGHUP, as netavark makes it
        subprocess.run(["pkill", "-HUP", "-x", "aardvark-dns"], check=False)


def _device(labels: object) -> str | None:
    return labels.get("io.edgefleet.device") if isinstance(labels, dict) else None


def session_devices(root: Path) -> set[str]:
    """Device ids of every agent enrolled under ``root`` (the session's base temp dir)."""
    found: set[str] = set()
    for path in root.glob("*/agent-*/device.json"):
        try:
            found.add(str(json.loads(path.read_text())["device_id"]))
        except (OSError, ValueError, KeyError):
            continue
    return found


def containers(job_id: str | None = None, all_states: bool = True) -> list[dict[str, object]]:
    args = ["ps", "--format", "json", "--filter", "label=io.edgefleet.managed=true"]
    if all_states:
        args.append("-a")
    if job_id:
        args += ["--filter", f"label=io.edgefleet.job={job_id}"]
    out = podman(*args).stdout.strip()
    result: list[dict[str, object]] = json.loads(out) if out else []
    return result
