"""`pip install edgefleet` is the agent, CLI and client (issue 18): the wheel's
base requirements name no server package, and without them the agent still
imports and `edgefleet server` says what to install instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from edgefleet import __version__
from tests.support.wheels import build_wheel

SERVER_ONLY = {"fastapi", "uvicorn", "sqlalchemy", "alembic", "aiosqlite", "psycopg", "pyarrow",
               "nats-py", "argon2-cffi", "jinja2", "python-multipart", "joserfc"}  # fmt: skip

# Make every server-only package unimportable, as in a fresh `pip install edgefleet`
# (and the docker SDK with its requests, which the agent no longer uses).
BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic",
                                  "aiosqlite", "psycopg", "pyarrow", "nats", "argon2", "jinja2",
                                  "multipart", "prometheus_client", "joserfc",
                                  "docker", "requests", "urllib3"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
"""


def _requirement_name(line: str) -> str:
    spec = line.split(":", 1)[1].split(";")[0].strip()
    for stop in "<>=![ ":
        spec = spec.split(stop)[0]
    return spec.lower()


def test_base_requirements_pull_no_server_package(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, __version__)
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    base = {_requirement_name(line) for line in requires if "extra ==" not in line}
    server = {_requirement_name(line) for line in requires if 'extra == "server"' in line}
    assert not base & SERVER_ONLY, f"pip install edgefleet would pull {base & SERVER_ONLY}"
    assert {"pydantic", "websockets", "httpx", "typer"} <= base
    # The agent speaks the Docker Engine API itself (edgefleet/agent/engine): no SDK, no requests.
    assert not base & {"docker", "requests", "urllib3"}, base & {"docker", "requests", "urllib3"}
    assert server >= SERVER_ONLY, SERVER_ONLY - server


def test_without_the_server_extra_the_agent_imports_and_the_server_verb_explains() -> None:
    agent = subprocess.run(
        [sys.executable, "-c", BLOCK + "import edgefleet.agent.agent, edgefleet.agent.upgrade.part, "
         "edgefleet.agent.runtimes.docker, edgefleet.agent.saves, edgefleet.agent.volumes"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert agent.returncode == 0, agent.stderr
    server = subprocess.run(
        [sys.executable, "-c", BLOCK + "sys.argv = ['edgefleet', 'server']\n"
         "from edgefleet.cli import main\nmain()"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert server.returncode == 2, server.stderr
    assert "pip install 'edgefleet[server]'" in " ".join(server.stderr.split())
    assert "Traceback" not in server.stderr
