"""What an idle agent loads (issue 18: an idle agent within 40 MB).

Each module an agent imports stays in its memory for months, so heavy ones load
only with the feature that needs them. This starts the real ``edgefleet
agent`` command (a stored enrollment, a server that does not answer), lets it
reach its idle state (every part started, the connection retrying) and reads
which modules the daemon imported from ``-X importtime``: a regression fails
here rather than in a benchmark.

``edgefleet agent`` parses its flags with Typer, then ``exec``s a lean process
(same pid) that loads neither Typer nor the CLI: the importtime log of the
second interpreter starts at its own header line.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edgefleet.agent.state import Identity, StateDir
from tests.support.procs import base_env, free_port
from tests.support.tls import self_signed

# Must not be in an idle agent: server packages, the CLI's, and what only a
# feature in use needs (the Compose
# parser with a local app, the fed protocol with a computation: its models,
# analytics and codec load with the first fed message; only edgefleet.fed.ops
# and .errors, the names the dataset registry and the part use, are allowed).
FORBIDDEN = {
    "typer",
    "click",
    "rich",
    "edgefleet.cli.processes",
    "edgefleet.cli.settings_command",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "alembic",
    "pyarrow",
    "nats",
    "psycopg",
    "httpx",
    "numpy",
    "docker",  # the SDK: the agent speaks the Engine API itself (agent/engine/)
    "requests",
    "urllib3",
    "http.client",  # the proxy lookup (agent/websocket/proxy.py), only with a *_proxy variable
    "urllib.request",
    "websockets",  # the agent speaks WebSocket itself (agent/websocket/), the CLI keeps websockets
    "_ssl",  # asyncio's TLS, with an http:// server (agent/footprint.py; "ssl" shows as tried)
    "importlib.metadata",  # pydantic's plugin lookup, disabled for the agent (agent/footprint.py)
    "email",
    "zipfile",
    "yaml",
    "tarfile",  # device-side builds and volume copies
    "edgefleet.spec.compose",
    "edgefleet.agent.upgrade.install",  # with the first upgrade (agent/upgrade/part.py)
    "edgefleet.agent.upgrade.launch",
    "edgefleet.fed.messages",
    "edgefleet.fed.analytics",
    "edgefleet.fed.codec",
    "edgefleet.fed.stats",
    "edgefleet.fed.graph",
    "edgefleet.fed.party",
    "edgefleet.fed.crypto",
    "edgefleet.fed.aggregator",
    "cryptography",
    "_pickle",  # deferred (cli/agent_entry.py): logging.handlers imports pickle for sockets
    "tempfile",  # deferred too: device-side builds (agent/builds.py) use them
    "urllib.error",
    "urllib.response",
    "_bz2",  # deferred too: shutil imports bz2 and lzma only to know they exist
    "_lzma",
    "_locale",  # deferred too: subprocess imports locale for text-mode pipes
    "edgefleet.server",
    "edgefleet.client",
}
# Loaded by an idle agent that really reached its idle state (parts started).
EXPECTED = {
    "edgefleet.agent.data.service",
    "edgefleet.agent.telemetry.part",
    "edgefleet.agent.websocket.client",
}
HEADER = "import time: self [us] | cumulative | imported package"


def _enrolled(state_dir: Path, server: str) -> None:
    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    StateDir(state_dir).save_identity(
        Identity(
            device_id="dev-idle",
            credential="unused",
            name="idle",
            project="p",
            servers=[server],
            private_key=base64.b64encode(private).decode(),
            public_key=base64.b64encode(public).decode(),
        )
    )


def _imported(log: str) -> set[str]:
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and "|" in line and HEADER not in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _idle_agent(
    tmp_path: Path, runtime: list[str], server: str | None = None
) -> tuple[set[str], set[str], bytes, list[bytes]]:
    """Start ``edgefleet agent`` with those flags, let it reach its idle state,
    stop it: (modules of the CLI, modules of the daemon, its environ, its
    command line). Without
    ``server``, nobody listens at its server: the agent keeps retrying."""
    server = server or f"http://127.0.0.1:{free_port()}"
    state_dir = tmp_path / "s"
    _enrolled(state_dir, server)
    argv = [sys.executable, "-X", "importtime", "-m", "edgefleet", "agent", "--server", server]
    argv += ["--state-dir", str(state_dir), *runtime, "--log-level", "info"]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(),
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        deadline = time.monotonic() + 60
        log_file = state_dir / "agent.log"
        while time.monotonic() < deadline:
            if log_file.exists() and "cannot reach" in log_file.read_text():
                break
            assert proc.poll() is None, "the agent exited"
            time.sleep(0.2)
        else:
            raise AssertionError("the agent never tried to connect")
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr[-2000:]

    parts = stderr.split(HEADER)
    assert len(parts) == 3, "edgefleet agent did not hand over to a lean process"
    return _imported(parts[1]), _imported(parts[2]), environ, cmdline


def _forbidden(daemon: set[str]) -> set[str]:
    loaded = {name for name in daemon if name.split(".")[0] in {n.split(".")[0] for n in FORBIDDEN}}
    return {
        name for name in loaded if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }


def test_the_idle_agent_daemon_loads_no_heavy_or_unused_module(tmp_path: Path) -> None:
    cli, daemon, environ, cmdline = _idle_agent(tmp_path, ["--runtime", "process"])
    assert "typer" in cli  # the flags were parsed by the full CLI...
    assert daemon >= EXPECTED, EXPECTED - daemon  # ...and the daemon reached its idle state
    bad = _forbidden(daemon)
    assert not bad, f"an idle agent imported {sorted(bad)}"
    # Set for the daemon by the hand-off: two glibc arenas, not one per thread.
    assert b"MALLOC_ARENA_MAX=2" in environ.split(b"\0")
    # ...and no -OO on its command line (cli/handoff.py says why).
    assert b"-OO" not in cmdline, cmdline
    # ...but -X no_debug_ranges: no column ranges in its code objects (cli/handoff.py).
    assert cmdline[1:3] == [b"-X", b"no_debug_ranges"], cmdline


@pytest.mark.podman
def test_an_idle_agent_on_podman_speaks_to_the_engine_without_the_docker_sdk(
    tmp_path: Path, podman_engine: Any
) -> None:
    """The docker runtime in use (it pinged the engine) with its own client:
    no docker SDK, requests, urllib3, http.client or TLS in the daemon."""
    runtime = ["--runtime", "docker", "--docker-host", podman_engine.url]
    _cli, daemon, _environ, _cmdline = _idle_agent(tmp_path, runtime)
    assert daemon >= EXPECTED | {"edgefleet.agent.engine.client"}  # the engine was pinged
    bad = _forbidden(daemon)
    assert not bad, f"an idle agent on Podman imported {sorted(bad)}"


def test_the_lean_command_line_gives_its_x_options_once() -> None:
    """A restart after enrolling, or an upgrade, re-uses the lean process's own
    command line: its -X options are not given twice."""
    script = "import json, edgefleet.cli.handoff as h; print(json.dumps(h.lean_argv()[1:]))"
    for flags in ([], ["-X", "no_debug_ranges"]):
        argv = [sys.executable, *flags, "-c", script]
        out = subprocess.run(argv, env=base_env(), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == ["-X", "no_debug_ranges", "-c", script]


def test_the_lean_process_drops_its_settings_and_keeps_requests_working(tmp_path: Path) -> None:
    """The hand-off's settings (the provisioning key among them) are removed from
    the daemon's environment before anything starts, so children never see them;
    requests (the docker SDK's transport) works without a charset detector."""
    from edgefleet.agent.settings import AgentSettings

    settings = AgentSettings(
        server=["http://127.0.0.1:9"], state_dir=tmp_path, provisioning_key="k"
    )
    script = (
        "import os, edgefleet.cli.agent_entry as e, edgefleet.agent.main as m\n"
        "def run(s, start_again):\n"
        "    import requests.models\n"
        "    print(s.provisioning_key, os.environ.get(e.SETTINGS_ENV),\n"
        "          os.popen('env').read().count(e.SETTINGS_ENV), requests.models.chardet)\n"
        "    return 0\n"
        "m.run = run\n"
        "e.main()\n"
    )
    env = base_env(EDGEFLEET_AGENT_LEAN_SETTINGS=settings.model_dump_json())
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["k", "None", "0", "None"]
    assert "Warning" not in out.stderr, out.stderr


DEFER_ALL = (
    "import sys, edgefleet.cli.agent_entry as e\nfor name in e.DEFERRED:\n    e.defer(name)\n"
)


def _with_deferred(script: str) -> list[str]:
    """The words ``script`` prints in a fresh interpreter after the lean process's
    deferrals (cli/agent_entry.DEFERRED)."""
    out = subprocess.run(
        [sys.executable, "-c", DEFER_ALL + script],
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_hashing_loads_on_first_use_and_from_several_threads_at_once() -> None:
    """secrets, hmac and hashlib are deferred in the lean process (pydantic would
    load OpenSSL's libcrypto through them); the first use loads them, even when
    eight threads make it at the same moment, and a SecretStr still compares."""
    script = (
        "import threading\n"
        "from pydantic import BaseModel, SecretStr\n"
        "class M(BaseModel):\n"
        "    s: SecretStr\n"
        "m = M(s='x')\n"
        "print('_hashlib' in sys.modules)\n"
        "import hashlib, hmac\n"
        "barrier, out = threading.Barrier(8), []\n"
        "def work():\n"
        "    barrier.wait()\n"
        "    out.append(hmac.new(b'k', b'm', hashlib.sha256).hexdigest())\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(len(out), len(set(out)), out[0][:16], '_hashlib' in sys.modules, m == M(s='x'))\n"
    )
    # hmac(b"k", b"m", sha256) starts b60090e3052297ae (the standard library's answer)
    assert _with_deferred(script) == ["False", "8", "1", "b60090e3052297ae", "True", "True"]


def test_pickle_loads_when_a_socket_log_handler_first_uses_it() -> None:
    """pickle is deferred in the lean process: importing logging.handlers (for the
    agent's rotating log file) leaves _pickle out; a socket handler still pickles."""
    script = (
        "import logging, logging.handlers\n"
        "print('_pickle' in sys.modules)\n"
        "record = logging.LogRecord('n', logging.INFO, 'f', 1, 'hello %s', ('x',), None)\n"
        "data = logging.handlers.SocketHandler('127.0.0.1', 9).makePickle(record)\n"
        "import pickle\n"
        "print('_pickle' in sys.modules, pickle.loads(data[4:])['msg'])\n"
    )
    assert _with_deferred(script) == ["False", "True", "hello", "x"]


def test_builds_reach_tempfile_and_urllib_error_through_the_deferred_stand_ins() -> None:
    """agent/builds.py imports tempfile and urllib.error at the top; in the lean
    process both load when a build first uses them, and work as the real ones."""
    script = (
        "import os, edgefleet.agent.builds as b\n"
        "print('urllib.response' in sys.modules, type(b.tempfile).__name__)\n"
        "with b.tempfile.TemporaryDirectory(prefix='ef-') as tmp:\n"
        "    made = os.path.isdir(tmp)\n"
        "try:\n"
        "    raise b.urllib.error.URLError('x')\n"
        "except (b.urllib.error.URLError, OSError) as exc:\n"
        "    caught = type(exc).__name__\n"
        "print(made, caught, 'urllib.response' in sys.modules)\n"
    )
    assert _with_deferred(script) == ["False", "_Deferred", "True", "URLError", "True"]


def test_shutil_and_tarfile_reach_bz2_and_lzma_through_the_deferred_stand_ins() -> None:
    """shutil imports bz2 and lzma at the top only to list its archive formats;
    in the lean process they load when a compressed tar is first read or written."""
    script = (
        "import io, shutil, tarfile\n"
        "formats = {name for name, _ in shutil.get_archive_formats()}\n"
        "print('_bz2' in sys.modules or '_lzma' in sys.modules, {'bztar', 'xztar'} <= formats)\n"
        "for mode in ('bz2', 'xz'):\n"
        "    buf = io.BytesIO()\n"
        "    with tarfile.open(fileobj=buf, mode='w:' + mode) as tar:\n"
        "        info = tarfile.TarInfo('f')\n"
        "        info.size = 2\n"
        "        tar.addfile(info, io.BytesIO(b'hi'))\n"
        "    buf.seek(0)\n"
        "    with tarfile.open(fileobj=buf, mode='r:*') as tar:\n"
        "        print(tar.extractfile('f').read().decode())\n"
    )
    assert _with_deferred(script) == ["False", "True", "hi", "hi"]


def test_a_text_mode_subprocess_reaches_locale_through_the_deferred_stand_in() -> None:
    """subprocess imports locale at the top for the encoding of text-mode pipes;
    in the lean process it loads with the first such pipe."""
    script = (
        "import subprocess\n"
        "print('_locale' in sys.modules)\n"
        "print(subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout.strip())\n"
        "print('_locale' in sys.modules)\n"
    )
    assert _with_deferred(script) == ["False", "hi", "True"]


@contextmanager
def _tls_listener(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """(port, CA certificate, the names it saw) of a TLS server on 127.0.0.1 that
    completes each handshake, reads the request and hangs up (the agent retries)."""
    cert, key = self_signed(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    handshakes: list[str] = []

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    handshakes.append(conn.version() or "")
                    conn.recv(4096)
            except OSError:  # the agent hung up first
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], cert, handshakes
    finally:
        listener.close()
        thread.join(10)


def test_an_idle_agent_over_https_loads_tls_and_no_host_name_codec(tmp_path: Path) -> None:
    """With an https:// server (an IP address, --ca-file) the daemon loads ssl,
    shakes hands, and never the idna codec (agent/tls.py encodes ASCII names
    itself: encodings.idna, stringprep and unicodedata cost ~0.3 MB)."""
    with _tls_listener(tmp_path) as (port, cert, handshakes):
        flags = ["--runtime", "process", "--ca-file", str(cert)]
        _cli, daemon, _environ, _cmdline = _idle_agent(tmp_path, flags, f"https://127.0.0.1:{port}")
    assert handshakes, "the agent never completed a TLS handshake"
    assert daemon >= EXPECTED | {"_ssl", "edgefleet.agent.tls"}
    bad = _forbidden(daemon - {"_ssl"}) | (daemon & {"encodings.idna", "stringprep", "unicodedata"})
    assert not bad, f"an idle agent over https imported {sorted(bad)}"
