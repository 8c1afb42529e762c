"""A real registry for tests: Debian's ``docker-registry`` (Distribution) on a
free loopback port with an htpasswd login, its own config file and storage
directory (never the system service), plus a Podman engine (``podman system
service`` on a private socket) that trusts it over plain HTTP through its own
``registries.conf`` (``CONTAINERS_REGISTRIES_CONF``, scoped to that service
process only). The port is chosen before that engine starts, so the trust
entry names it exactly. Agents that must push or pull use ``engine_url``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.support.podman import CONF
from tests.support.procs import free_port, wait_for

USER, PASSWORD = "pusher", "s3cret-registry-pass"


class Registry:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = f"127.0.0.1:{free_port()}"
        self.socket = workdir / "podman-registry.sock"
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def engine_url(self) -> str:
        return f"unix://{self.socket}"

    def _start(self, argv: list[str], log: str, env: dict[str, str]) -> None:
        with open(self.workdir / log, "ab") as out:
            self.procs.append(
                subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )

    def start(self) -> None:
        for tool in ("docker-registry", "htpasswd", "podman"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed: run scripts/install-test-deps.sh")
        logins = subprocess.run(
            ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
        ).stdout
        (self.workdir / "htpasswd").write_text(logins)
        (self.workdir / "registry.yml").write_text(
            f"version: 0.1\nlog: {{level: warn}}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.workdir / 'blobs'}}}}}\n"
            f"http: {{addr: '{self.host}'}}\n"
            f"auth: {{htpasswd: {{realm: edgefleet-test, path: {self.workdir / 'htpasswd'}}}}}\n"
        )
        (self.workdir / "registries.conf").write_text(
            f'[[registry]]\nlocation = "{self.host}"\ninsecure = true\n'
        )
        env = dict(os.environ, CONTAINERS_CONF=str(CONF))
        self._start(
            ["docker-registry", "serve", str(self.workdir / "registry.yml")], "registry.log", env
        )
        self._start(
            ["podman", "system", "service", "--time=0", self.engine_url],
            "podman-registry.log",
            dict(env, CONTAINERS_REGISTRIES_CONF=str(self.workdir / "registries.conf")),
        )
        wait_for(
            lambda: httpx.get(f"http://{self.host}/v2/", timeout=2).status_code == 401,
            20,
            what="registry up",
        )
        wait_for(self.socket.exists, 30, what="podman service trusting the registry")

    def catalog(self) -> list[str]:
        """The repositories the registry holds (``/v2/_catalog``)."""
        answer = httpx.get(
            f"http://{self.host}/v2/_catalog", auth=(USER, PASSWORD), timeout=10
        ).raise_for_status()
        repositories: list[str] = answer.json()["repositories"]
        return repositories

    def manifest_digest(self, repository: str, tag: str) -> str:
        answer = httpx.head(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            auth=(USER, PASSWORD),
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, "
                "application/vnd.docker.distribution.manifest.v2+json"
            },
            timeout=10,
        ).raise_for_status()
        return answer.headers["Docker-Content-Digest"]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
