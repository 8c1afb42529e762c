"""Scale-out test parts: a real nats-server and a real HAProxy on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.procs import Proc, base_env, free_port


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class NatsProc(Proc):
    def __init__(self, workdir: Path) -> None:
        if shutil.which("nats-server") is None:
            raise RuntimeError(
                "nats-server is not installed: run scripts/install-test-deps.sh (make test does)"
            )
        self.port = free_port()
        super().__init__(
            "nats",
            ["nats-server", "-a", "127.0.0.1", "-p", str(self.port)],
            workdir / "nats.log",
            base_env(),
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        _wait_port(self.port)


HAPROXY_CONFIG = """\
# A working HAProxy setup for edgefleet replicas (also shown in docs/DEPLOYMENT.md).
global
    maxconn 4000               # raise with the file descriptor limit (ulimit -n >= 2 x maxconn)

defaults
    mode http
    option http-server-close
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h          # agents' WebSockets, exec sessions, log follows
    retries 3
    option redispatch
    retry-on conn-failure empty-response

frontend edgefleet
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET /api/v1/health
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


class HaproxyProc(Proc):
    def __init__(self, workdir: Path, backends: list[int]) -> None:
        if shutil.which("haproxy") is None:
            raise RuntimeError(
                "haproxy is not installed: run scripts/install-test-deps.sh (make test does)"
            )
        self.port = free_port()
        servers = "\n".join(
            f"    server r{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(backends)
        )
        config = workdir / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy config invalid: {check.stdout}{check.stderr}")
        super().__init__(
            "haproxy", ["haproxy", "-db", "-f", str(config)], workdir / "haproxy.log", base_env()
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        _wait_port(self.port)
