"""``edgefleet agent install``: the systemd unit it writes, checked by systemd itself."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

KEY = "pk_secret-provisioning-key-123"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _unit_of(dry_run_output: str) -> str:
    """The unit's text from --dry-run's output (it prints the unit, then the key file)."""
    body = dry_run_output.split("\n", 1)[1]
    return body.split("\n# /", 1)[0]


def test_dry_run_prints_a_unit_systemd_accepts(tmp_path: Path) -> None:
    done = _cli(
        "install", "--server", "https://fleet.example:8400", "--provisioning-key", KEY,
        "--allow-process", "--label", "site=lab", "--name", "pi 7%", "--dry-run",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout, "the key must never be printed or put in the unit"
    unit = _unit_of(done.stdout)
    assert "\nRestart=always\n" in unit and "\nKillMode=process\n" in unit
    assert "\nStateDirectory=edgefleet-agent\n" in unit
    assert "\nEnvironmentFile=-/etc/edgefleet/agent.env\n" in unit
    assert "\nEnvironment=EDGEFLEET_SUPERVISED=1\n" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith(f"ExecStart={sys.executable} -P -m edgefleet agent ")
    for part in ("--server https://fleet.example:8400", "--allow-process", "--label site=lab",
                 '--name "pi 7%%"', "--state-dir /var/lib/edgefleet-agent"):  # fmt: skip
        assert part in exec_start, exec_start
    # Hardening that would break a runtime stays off.
    for option in ("PrivateTmp=", "NoNewPrivileges=", "PrivateDevices=", "ProtectHome="):
        assert f"\n{option}" not in unit, option
    path = tmp_path / "edgefleet-agent.service"
    path.write_text(unit)
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/install-test-deps.sh installs systemd"
    verify = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert verify.returncode == 0, verify.stderr
    assert "edgefleet-agent.service" not in verify.stderr, verify.stderr  # no warnings about it


def test_install_writes_the_key_0600_apart_from_the_unit(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        done = _cli("install", "--server", "http://s:8400", "--unit-dir", str(tmp_path))
        assert done.returncode != 0 and "sudo" in done.stderr and "Traceback" not in done.stderr
        return
    env_file = tmp_path / "etc" / "agent.env"
    done = _cli(
        "install", "--server", "http://s:8400", "--provisioning-key", KEY,
        "--unit-dir", str(tmp_path), "--env-file", str(env_file), "--no-start",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    unit = (tmp_path / "edgefleet-agent.service").read_text()
    assert KEY not in unit and f"EnvironmentFile=-{env_file}" in unit
    assert env_file.read_text() == f"EDGEFLEET_PROVISIONING_KEY={KEY}\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_bad_flags_fail_without_a_traceback() -> None:
    missing = _cli("install", "--dry-run")
    assert missing.returncode == 2 and "--server is required" in missing.stderr
    bad = _cli("install", "--server", "http://s", "--label", "bad label=x", "--dry-run")
    assert bad.returncode == 2 and "--label" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr
