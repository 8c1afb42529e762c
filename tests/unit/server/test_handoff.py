"""The hand-off from ``edgefleet server``'s CLI process to the lean one (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from edgefleet.server.handoff import HANDOFF_ENV, plain
from edgefleet.server.settings import ServerSettings


def _settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(
        data_dir=tmp_path,
        port=18123,
        database_url="postgresql://edge:pa55word@db.example/edge",
        secret_key=SecretStr("a passphrase of sixteen+ characters"),
        bus_token=SecretStr("bus-token"),
        metrics_token=SecretStr("metrics-token-0123456789"),
        forwarded_allow_ips="10.0.0.0/24, 10.1.0.5",
        admin_token="admin-token-0123456789",
    )


def test_the_settings_come_back_whole_secrets_included(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    back = ServerSettings.model_validate_json(plain(settings))
    assert back == settings
    assert back.secret_key is not None and back.bus_token is not None
    assert back.secret_key.get_secret_value() == "a passphrase of sixteen+ characters"
    assert back.bus_token.get_secret_value() == "bus-token"


# The lean process as `edgefleet server` starts it again after the exec, with the
# server's `run` replaced by one that reports what it was given and what is loaded.
PROBE = """
import json, os, sys, types
fake = types.ModuleType("edgefleet.server.main")
def run(settings):
    print(json.dumps({
        "modules": sorted(name for name, module in sys.modules.items() if module is not None),
        "secret": settings.secret_key.get_secret_value(),
        "database_url": settings.database_url,
        "port": settings.port,
        "env_left": os.environ.get(sys.argv[1]),
    }))
fake.run = run
sys.modules["edgefleet.server.main"] = fake
sys.argv = ["edgefleet", "server", "--port", "1"]  # the flags are not parsed again
from edgefleet.cli import main
main()
"""


def test_the_lean_process_reads_the_pipe_and_loads_no_cli(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, plain(_settings(tmp_path)).encode())
    os.close(write)
    env = {**os.environ, HANDOFF_ENV: str(read)}
    try:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, HANDOFF_ENV],
            env=env,
            pass_fds=(read,),
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.close(read)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["secret"] == "a passphrase of sixteen+ characters"
    assert got["database_url"] == "postgresql://edge:pa55word@db.example/edge"
    assert got["port"] == 18123  # the handed-over settings, not the command line's
    assert got["env_left"] is None  # children of the server never see the variable
    loaded = {name.split(".")[0] for name in got["modules"]} | set(got["modules"])
    assert "edgefleet.server.settings" in loaded  # the probe did get that far
    cli = {"typer", "edgefleet.cli.main", "edgefleet.cli.processes", "edgefleet.agent"}
    assert cli & loaded == set()
