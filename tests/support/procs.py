"""Real processes for end-to-end tests: ``edgefleet server`` and ``edgefleet agent``.

Each runs as a child process of the test with its own data dir and log file;
``kill()`` is a real SIGKILL. Logs are printed when a test fails (see conftest).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from edgefleet.client import Client
from tests.support import fedhooks, templates

ADMIN_TOKEN = "eft_test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on this loopback port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the last error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # keep polling; report the last failure
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


def wait_for_line(path: Path, timeout: float = 60.0, what: str = "a line") -> str:
    """The first line a process writes to ``path``, once it is whole: a shell's
    ``echo ... > path`` creates the file before it writes, so "it exists" is
    not yet "it holds the line"."""

    def whole() -> str | None:
        text = path.read_text() if path.exists() else ""
        return text.split("\n", 1)[0] if "\n" in text else None

    line: str = wait_for(whole, timeout, what=what)
    return line.strip()


class Proc:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


FEDHOOKS = Path(__file__).with_name("fedhooks.py")
# What the agent logs when enrolling ends its first process, and on connecting.
RESTART_AFTER_ENROLLING = "enrolled; starting again"
CONNECTED = "connected to "


def edgefleet_argv(hooks: bool = False) -> list[str]:
    """How to start ``edgefleet``: with ``hooks``, through the test-only
    :mod:`tests.support.fedhooks` bootstrap, which installs the hooks its
    environment variables ask for and then runs the same CLI."""
    return [sys.executable, str(FEDHOOKS)] if hooks else [sys.executable, "-m", "edgefleet"]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProc(Proc):
    def __init__(
        self,
        workdir: Path,
        *,
        database_url: str | None = None,
        port: int | None = None,
        heartbeat: float = 1.0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        name: str = "server",
        fed_transcript: bool = False,
        migrated: bool = True,
    ) -> None:
        """``fed_transcript``: record every relayed federated message in
        ``<data-dir>/fed-transcript.jsonl`` (see :mod:`tests.support.fedhooks`).
        ``migrated``: without a ``database_url``, a new data dir starts with a
        copy of a migrated SQLite database (:mod:`tests.support.templates`);
        False leaves the server to migrate an empty one itself."""
        self.port = port or free_port()
        self.data_dir = workdir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        database = self.data_dir / "edgefleet.db"
        if migrated and not database_url and not database.exists():
            templates.sqlite_copy(database)
        env = dict(env or {})
        if fed_transcript:
            env[fedhooks.TRANSCRIPT_ENV] = str(self.data_dir / "fed-transcript.jsonl")
        argv = [
            *edgefleet_argv(hooks=fed_transcript),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--heartbeat-interval",
            str(heartbeat),
            "--log-level",
            "info",
        ]
        if database_url:
            argv += ["--database-url", database_url]
        argv += extra_args or []
        super().__init__(
            name,
            argv,
            workdir / f"{name}.log",
            base_env(EDGEFLEET_ADMIN_TOKEN=ADMIN_TOKEN, **env),
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        super().start()
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                # Not left running: a benchmark whose server never became ready
                # (it has no fleet fixture to stop it) left one serving for an hour.
                self.stop()
                raise

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.running:
                raise AssertionError(f"server exited:\n{self.log()[-3000:]}")
            # This server's answer, not another's: a test that restarts a server on
            # the port it had can find that port taken meanwhile by another test's
            # server (a full run failed with a 401 from one).
            return self.health().status_code == 200 and self.listens()

        wait_for(ready, timeout, what="server health")

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1/health", timeout=2)

    def listens(self) -> bool:
        """Whether this server's own process holds the listening socket of its port."""
        import psutil

        assert self.process is not None
        try:
            sockets = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(s.status == psutil.CONN_LISTEN and s.laddr.port == self.port for s in sockets)

    def client(self, token: str = ADMIN_TOKEN) -> Client:
        return Client(self.url, token)

    def http(self, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


class AgentProc(Proc):
    def __init__(
        self,
        workdir: Path,
        servers: list[str],
        *,
        key: str | None,
        name: str,
        runtime: str = "process",
        labels: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        netns: str | None = None,
        process_user: str | None = "",
        fed_fault: str | None = None,
    ) -> None:
        """``process_user``: by default the test runner's own user, so process
        services can run the runner's Python and write to pytest's tmp dirs
        (both closed to ``nobody``, the agent's default as root); ``None`` leaves
        the agent's default (tests/security/test_device_policy.py checks it).
        ``fed_fault``: faults in federated computations, as
        :mod:`tests.support.fedhooks` reads them (``exit-after-masked@DATASET``, ...)."""
        self.state_dir = workdir / f"agent-{name}"
        env = dict(env or {})
        if fed_fault:
            env[fedhooks.FAULT_ENV] = fed_fault
        argv = [*edgefleet_argv(hooks=bool(fed_fault)), "agent"]
        for server in servers:
            argv += ["--server", server]
        argv += [
            "--state-dir",
            str(self.state_dir),
            "--runtime",
            runtime,
            "--reconnect-max-delay",
            "2",
        ]
        if key:
            argv += ["--provisioning-key", key, "--name", name]
        for k, v in (labels or {}).items():
            argv += ["--label", f"{k}={v}"]
        if process_user == "":
            import pwd

            process_user = pwd.getpwuid(os.geteuid()).pw_name
        if process_user is not None and "--process-user" not in (extra_args or []):
            argv += ["--process-user", process_user]
        argv += extra_args or []
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        super().__init__(f"agent-{name}", argv, workdir / f"agent-{name}.log", base_env(**env))

    def device_id(self) -> str:
        import json

        return str(json.loads((self.state_dir / "device.json").read_text())["device_id"])

    def wait_enrolled(self, timeout: float = 60) -> str:
        """The device id once enrolled and, when enrolling made the agent start
        again (issue 18), once that second process has connected: before it,
        the server rightly calls the device offline. Six agents starting at once
        on a loaded 2-core CI machine took 23 s from enrolling to connected."""

        def enrolled() -> str | None:
            if not self.running and not (self.state_dir / "device.json").exists():
                raise AssertionError(f"agent exited:\n{self.log()[-3000:]}")
            if not (self.state_dir / "device.json").exists():
                return None
            log = self.log()
            restarted = log.rfind(RESTART_AFTER_ENROLLING)
            if restarted >= 0 and CONNECTED not in log[restarted:]:
                return None
            return self.device_id()

        result: str = wait_for(enrolled, timeout, what=f"{self.name} enrolled and connected")
        return result


def stop_all(procs: list[Proc]) -> None:
    for proc in reversed(procs):
        with contextlib.suppress(Exception):
            proc.stop(5)


def kill_process_workloads(root: Path) -> None:
    """Workloads of the process runtime outlive their agent on purpose; a test
    must not leave them behind on the machine."""
    import json

    for meta in root.glob("**/processes/*/meta.json"):
        try:
            pid = json.loads(meta.read_text()).get("pid")
        except (OSError, ValueError):
            continue
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
