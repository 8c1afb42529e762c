"""``edgefleet agent install|uninstall``: the agent as a systemd service (issue 18).

``install`` takes every flag of ``edgefleet agent`` (derived from
:class:`~edgefleet.agent.settings.AgentSettings`, one source of truth) and
writes two files:

- ``/etc/systemd/system/edgefleet-agent.service``: runs this Python's
  ``-m edgefleet agent`` with those flags, restarts it always, keeps its state
  in ``/var/lib/edgefleet-agent`` (systemd's ``StateDirectory``);
- ``/etc/edgefleet/agent.env`` (mode 0600): the provisioning key, so it never
  appears in the unit, ``ps`` or the journal. It is needed only for the first
  enrollment; delete it afterwards if you like (the unit marks it optional).

then ``systemctl daemon-reload`` and ``systemctl enable --now``. ``--dry-run``
prints both (the key masked) and changes nothing. The hardening options are
the ones that leave both runtimes working; each is explained in the unit.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from edgefleet.cli.output import fail

UNIT_NAME = "edgefleet-agent.service"
UNIT_DIR = Path("/etc/systemd/system")
ENV_FILE = Path("/etc/edgefleet/agent.env")
STATE_DIR = Path("/var/lib/edgefleet-agent")  # StateDirectory=edgefleet-agent

app = typer.Typer()

# Each option, and why it is safe for the docker (Podman/Docker socket) and process runtimes.
HARDENING = """\
# Restart whatever the reason, without giving up: a device has no one to restart it.
Restart=always
RestartSec=5
# A restart or upgrade of the agent stops only the agent: process workloads (adopted
# again by pid) and an upgrade's watchdog keep running. Containers belong to the engine.
KillMode=process
TimeoutStopSec=30
# The kernel kills a workload before the agent when memory runs out.
OOMScoreAdjust=-500
# Files the agent creates (credential, buffered data) are its own.
UMask=0077
# /usr, /boot and /etc read-only for the agent; its writes go to the state dir
# (upgrades install there too). The engine runs in its own service, unaffected.
ProtectSystem=full
# The agent never loads kernel modules, sets the hostname, needs
# realtime scheduling or another execution domain.
ProtectKernelModules=yes
ProtectHostname=yes
RestrictRealtime=yes
LockPersonality=yes
# Deliberately NOT set, because they break a runtime or a feature:
#  PrivateTmp: containers bind-mount paths the agent prepares; the engine must see them.
#  ProtectHome, ProtectKernelTunables: allowed host paths; LED blinking for `identify`.
#  NoNewPrivileges, CapabilityBoundingSet: process workloads run as --process-user and
#    may use setuid/setcap tools (ping); the agent switches users for them.
#  ProtectControlGroups, PrivateDevices, ProtectClock (it implies a device allow-list):
#    peripherals (cameras, serial ports) that workloads are given, and their limits.
"""


def _quote(arg: str) -> str:
    """One ExecStart word: systemd expands % and $, and splits on spaces."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if any(c in escaped for c in " \t\"'\\;") or not escaped:
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def agent_argv(values: dict[str, Any]) -> list[str]:
    """``edgefleet agent`` flags from the given settings (lists repeat, booleans as --x/--no-x)."""
    argv: list[str] = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, list | tuple):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(getattr(value, "value", value))]
    return argv


def render_unit(python: str, argv: list[str], env_file: Path) -> str:
    exec_start = " ".join(_quote(a) for a in [python, "-P", "-m", "edgefleet", "agent", *argv])
    return f"""\
# Written by `edgefleet agent install`; `edgefleet agent uninstall` removes it.
[Unit]
Description=edgefleet agent (device daemon: runs this device's jobs)
Documentation=https://github.com/edgefleet/edgefleet/blob/main/docs/AGENT_SERVICE.md
Wants=network-online.target
After=network-online.target docker.service podman.socket
StartLimitIntervalSec=0

[Service]
Type=simple
# The agent upgrades itself over the air; with this it lets systemd restart it
# (into the version its state dir names) instead of doing so on its own.
Environment=EDGEFLEET_SUPERVISED=1
Environment=PYTHONUNBUFFERED=1
# The provisioning key (mode 0600); optional once the device is enrolled.
EnvironmentFile=-{env_file}
StateDirectory={STATE_DIR.name}
StateDirectoryMode=0700
WorkingDirectory=%S/{STATE_DIR.name}
ExecStart={exec_start}
{HARDENING}
[Install]
WantedBy=multi-user.target
"""


def _systemctl(*args: str) -> None:
    try:
        done = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise fail("systemctl not found: this device does not run systemd") from None
    if done.returncode != 0:
        raise fail(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")


def _install(dry_run: bool, unit_dir: Path, env_file: Path, start: bool, **values: Any) -> None:
    from pydantic import ValidationError

    from edgefleet.agent.settings import AgentSettings
    from edgefleet.cli.settings_command import given, settings_error

    chosen = given(values)
    if not chosen.get("server"):
        raise fail("--server is required (the URL of the edgefleet server)", 2)
    key = chosen.pop("provisioning_key", None)
    chosen.setdefault("state_dir", STATE_DIR)
    try:
        AgentSettings(**chosen, provisioning_key=key)  # refuse what the agent would refuse
    except ValidationError as exc:
        raise fail(settings_error(exc), 2) from exc
    unit = render_unit(sys.executable, agent_argv(chosen), env_file)
    env = f"EDGEFLEET_PROVISIONING_KEY={key}\n" if key else ""
    unit_path = unit_dir / UNIT_NAME
    if dry_run:
        typer.echo(f"# {unit_path}\n{unit}")
        typer.echo(f"# {env_file} (mode 0600)")
        typer.echo("EDGEFLEET_PROVISIONING_KEY=<hidden>" if key else "# (no provisioning key)")
        return
    if os.geteuid() != 0:
        raise fail("installing a system service needs root: run it with sudo (or --dry-run)")
    env_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(env)
    os.chmod(env_file, 0o600)
    unit_path.write_text(unit)
    if not start:
        typer.echo(
            f"wrote {unit_path}; start it with: systemctl daemon-reload && "
            f"systemctl enable --now {UNIT_NAME}"
        )
        return
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", UNIT_NAME)
    typer.echo(f"installed {unit_path} and started it")


def _register_install() -> None:
    from edgefleet.agent.settings import AgentSettings
    from edgefleet.cli.settings_command import parameters

    def install(**values: Any) -> None:
        _install(**values)

    extra = [
        inspect.Parameter(
            "dry_run",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[bool, typer.Option("--dry-run", help="print, change nothing")],
        ),
        inspect.Parameter(
            "start",
            inspect.Parameter.KEYWORD_ONLY,
            default=True,
            annotation=Annotated[
                bool,
                typer.Option(
                    "--start/--no-start",
                    help="daemon-reload and enable --now after writing (--no-start: files only)",
                ),
            ],
        ),
        inspect.Parameter(
            "unit_dir",
            inspect.Parameter.KEYWORD_ONLY,
            default=UNIT_DIR,
            annotation=Annotated[Path, typer.Option("--unit-dir", help="where the unit goes")],
        ),
        inspect.Parameter(
            "env_file",
            inspect.Parameter.KEYWORD_ONLY,
            default=ENV_FILE,
            annotation=Annotated[
                Path, typer.Option("--env-file", help="where the provisioning key goes (0600)")
            ],
        ),
    ]
    install.__signature__ = inspect.Signature([*parameters(AgentSettings), *extra])  # type: ignore[attr-defined]
    install.__doc__ = (
        "Install the agent as a systemd service (every `edgefleet agent` flag applies); "
        "--dry-run prints the unit."
    )
    app.command("install")(install)


_register_install()


@app.command("uninstall")
def uninstall(
    unit_dir: Path = typer.Option(UNIT_DIR, "--unit-dir", help="where the unit is"),
    env_file: Path = typer.Option(ENV_FILE, "--env-file", help="the provisioning key's file"),
) -> None:
    """Stop and remove the agent's service; its state dir (enrollment, data) stays."""
    if os.geteuid() != 0:
        raise fail("removing a system service needs root: run it with sudo")
    unit_path = unit_dir / UNIT_NAME
    if not unit_path.exists():
        raise fail(f"{unit_path} does not exist: the agent is not installed as a service")
    _systemctl("disable", "--now", UNIT_NAME)
    unit_path.unlink()
    env_file.unlink(missing_ok=True)
    _systemctl("daemon-reload")
    typer.echo(
        f"removed {unit_path}; the state in {STATE_DIR} is kept (delete it to forget the enrollment)"
    )
