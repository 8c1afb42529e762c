"""Which runtimes a real agent offers: ``sim`` is the simulator's, never a choice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgefleet.agent.runtimes.base import RUNTIMES
from edgefleet.agent.settings import AgentSettings
from tests.support.procs import base_env, edgefleet_argv


def _agent(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [*edgefleet_argv(), "agent", "--server", "http://127.0.0.1:9"]
    argv += ["--state-dir", str(tmp_path / "state"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=base_env(COLUMNS="200", **env)
    )


def test_a_real_agent_refuses_the_sim_runtime_and_names_the_flag(tmp_path: Path) -> None:
    assert sorted(RUNTIMES) == ["docker", "process"]
    with pytest.raises(ValidationError, match=r"--runtime sim: .*edgefleet sim"):
        AgentSettings(runtime="sim")
    flag = _agent(["--runtime", "sim"], tmp_path)
    assert flag.returncode != 0
    assert "'--runtime'" in flag.stderr and "'sim' is not one of" in flag.stderr
    from_env = _agent([], tmp_path, EDGEFLEET_RUNTIME="sim")
    assert from_env.returncode != 0
    assert "--runtime sim" in from_env.stderr and "edgefleet sim" in from_env.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_agent_help_offers_no_sim_runtime(tmp_path: Path) -> None:
    shown = _agent(["--help"], tmp_path)
    assert shown.returncode == 0
    line = next(x for x in shown.stdout.splitlines() if "--runtime " in x)
    assert "<auto|docker|process>" in line
