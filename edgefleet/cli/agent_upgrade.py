"""Agent upgrades over the air (issue 18): ``edgefleet agent-releases
upload|list`` and ``edgefleet devices upgrade-agent``."""

from __future__ import annotations

from pathlib import Path

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, fail, print_json, show_list

app = typer.Typer(
    help="Agent releases (wheels) the server hands out to devices.", no_args_is_help=True
)

RELEASE_COLUMNS = [
    ("VERSION", lambda r: r["version"]),
    ("SHA256", lambda r: r["sha256"][:16] + "…"),
    ("SIZE", lambda r: str(r["size"])),
    ("UPLOADED", lambda r: r["created_at"]),
    ("BY", lambda r: r["created_by"]),
]
DEVICE_COLUMNS = [
    ("DEVICE", lambda d: d["device"]),
    ("NAME", lambda d: d["name"]),
    ("BATCH", lambda d: str(d["batch"])),
    ("STATE", lambda d: d["state"]),
    ("ERROR", lambda d: d["error"] or "-"),
]


@app.command("upload")
def upload(
    wheel: Path = typer.Argument(..., help="the agent wheel (edgefleet-V-py3-none-any.whl)"),
    version: str = typer.Option(..., "--version", help="its version, as the agent reports it"),
    output: Format = OutputOption,
) -> None:
    """Upload an agent release (administrators)."""
    if not wheel.is_file():
        raise fail(f"{wheel}: no such file")
    with config.client() as client:
        release = client.upload_agent_release(wheel, version)
    show_list([release], RELEASE_COLUMNS, output)


@app.command("list")
def list_releases(output: Format = OutputOption) -> None:
    """Agent releases the server holds."""
    with config.client() as client:
        show_list(client.agent_releases(), RELEASE_COLUMNS, output)


def upgrade_agent(
    version: str = typer.Option(..., "--version", help="the agent release to install"),
    devices: list[str] = typer.Option(None, "--devices", "-d", help="device id or name (repeat)"),
    selector: str = typer.Option(None, "--selector", "-l", help='labels, e.g. "site=a"'),
    project: str = typer.Option(None, "--project", "-p", help="with --selector (default: default)"),
    max_parallel: int = typer.Option(1, "--max-parallel", help="devices upgraded at once"),
    deadline: float = typer.Option(
        None, "--deadline", help="seconds a device has to come back healthy (server default)"
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="follow the rollout to its end"),
    timeout: float = typer.Option(1800, "--timeout", help="with --wait: give up after seconds"),
    output: Format = OutputOption,
) -> None:
    """Upgrade devices' agents in batches; a device whose new agent does not come
    back healthy rolls back by itself, and the rollout stops there."""
    if (not devices) == (selector is None):
        raise fail("give --devices or --selector (one of them)", 2)
    names = [n for item in devices or [] for n in item.split(",") if n]
    with config.client() as client:
        upgrade = client.upgrade_agents(
            version,
            devices=names or None,
            selector=selector,
            project=project,
            max_parallel=max_parallel,
            deadline=deadline,
        )
        if wait:
            upgrade = client.wait_agent_upgrade(upgrade["id"], timeout)
    if output == Format.json:
        print_json(upgrade)
    else:
        typer.echo(f"agent upgrade {upgrade['id']} to {version}: {upgrade['state']}")
        show_list(upgrade["devices"], DEVICE_COLUMNS, output)
        if upgrade["error"]:
            typer.echo(f"stopped: {upgrade['error']}")
    if upgrade["state"] == "failed":
        raise typer.Exit(1)


def register_device_commands(devices: typer.Typer) -> None:
    devices.command("upgrade-agent")(upgrade_agent)
