"""``edgefleet exec DEVICE -- CMD`` skips Typer (issue 16) and must not be told
apart from the Typer verb: same request, output, exit code and error text. A
real ``edgefleet`` process talks to a small API on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from edgefleet.cli.exec_once import plain_args


class ExecApi(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append({"path": self.path, "auth": self.headers["Authorization"], **body})
        if self.path == "/api/v1/devices/dev1/exec":
            status = 200
            answer: dict[str, Any] = {
                "exit_code": 3,
                "stdout": "out\n",
                "stderr": "err\n",
                "timed_out": False,
                "truncated": False,
            }
        else:
            status, answer = 404, {"error": {"message": "device 'ghost' not found"}}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api() -> Iterator[str]:
    ExecApi.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ExecApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _edgefleet(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "EDGEFLEET_SERVER": url}
    env["EDGEFLEET_TOKEN"] = "eft_secret"
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_only_the_plain_shape_takes_the_fast_path() -> None:
    assert plain_args(["exec", "dev", "--", "uname", "-a"]) == ("dev", ["uname", "-a"])
    assert plain_args(["exec", "dev", "--", "--help"]) == ("dev", ["--help"])  # the command's
    assert plain_args(["exec", "dev", "--"]) is None  # no command: Typer's error
    assert plain_args(["exec", "-it", "dev", "--", "sh"]) is None
    assert plain_args(["exec", "--help"]) is None
    assert plain_args(["exec", "dev", "--timeout", "5", "--", "true"]) is None
    assert plain_args(["--server", "http://x", "exec", "dev", "--", "true"]) is None
    assert plain_args(["devices", "dev", "--", "true"]) is None


def test_both_paths_send_the_same_request_and_end_the_same(api: str) -> None:
    fast = _edgefleet(api, "exec", "dev1", "--", "sh", "-c", "exit 3")
    typer_path = _edgefleet(api, "exec", "--timeout", "30", "dev1", "--", "sh", "-c", "exit 3")
    for done in (fast, typer_path):
        assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    first, second = ExecApi.bodies
    assert first == second
    assert first == {
        "path": "/api/v1/devices/dev1/exec",
        "auth": "Bearer eft_secret",
        "command": ["sh", "-c", "exit 3"],
        "timeout": 30.0,
        "env": {},
    }


def test_a_client_error_reads_as_the_typer_verbs(api: str) -> None:
    fast = _edgefleet(api, "exec", "ghost", "--", "true")
    typer_path = _edgefleet(api, "exec", "--timeout", "30", "ghost", "--", "true")
    assert fast.returncode == typer_path.returncode == 1
    assert fast.stderr == typer_path.stderr
    assert "error: device 'ghost' not found" in fast.stderr
    assert fast.stdout == typer_path.stdout == ""


def test_the_fast_path_loads_neither_typer_nor_rich(api: str) -> None:
    code = (
        "import sys\n"
        "sys.argv = ['edgefleet', 'exec', 'dev1', '--', 'true']\n"
        "import edgefleet.cli\n"
        "try:\n"
        "    edgefleet.cli.main()\n"
        "except SystemExit as exc:\n"
        "    loaded = {m for m, v in sys.modules.items() if v is not None}\n"
        "    print(exc.code, sorted(m for m in loaded if m.split('.')[0] in ('typer', 'rich', 'click')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "EDGEFLEET_SERVER": api},
    )
    assert done.stdout.splitlines()[-1] == "3 []", done.stderr
