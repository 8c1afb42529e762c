"""``edgefleet devices require|requirements``: the peripherals a project's
devices must have to count as ready (``PUT/GET
/projects/{project}/device-requirements``)."""

from __future__ import annotations

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, Item, OutputOption, fail, show_list

COLUMNS = [
    ("SELECTOR", lambda r: r["selector"] or "(every device)"),
    ("PERIPHERALS", lambda r: ", ".join(r["peripherals"])),
]


def require(
    peripherals: list[str] = typer.Argument(
        None, help="kinds, names or paths (camera, /dev/ttyUSB0); none with --clear"
    ),
    project: str = typer.Option(..., "--project", "-p"),
    selector: str = typer.Option("", "--selector", "-l", help="which devices (default: all)"),
    clear: bool = typer.Option(False, "--clear", help="drop every rule of the project"),
    output: Format = OutputOption,
) -> None:
    """Declare peripherals the matching devices must have (replaces the rule for
    that selector); a device missing one is online but not ready."""
    with config.client() as client:
        if clear:
            rules: list[Item] = []
        else:
            if not peripherals:
                raise fail("name at least one peripheral, or give --clear")
            kept = [r for r in client.device_requirements(project) if r["selector"] != selector]
            rules = [*kept, {"selector": selector, "peripherals": list(peripherals)}]
        show_list(client.set_device_requirements(project, rules), COLUMNS, output)


def requirements(
    project: str = typer.Option(..., "--project", "-p"), output: Format = OutputOption
) -> None:
    """Show the peripherals a project's devices must have."""
    with config.client() as client:
        show_list(client.device_requirements(project), COLUMNS, output)


def register_device_commands(devices: typer.Typer) -> None:
    devices.command("require")(require)
    devices.command("requirements")(requirements)
