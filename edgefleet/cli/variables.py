"""``edgefleet variables``: project, selector-scoped and per-device variables.

What a device's services see, highest first: device > selector > project >
the job's environment > the Compose file's defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, Item, OutputOption, ago, fail, show_item, show_list

app = typer.Typer(
    help="Variables for ${VAR} in Compose files and for services' environment "
    "(precedence: device > selector > project > job environment > Compose defaults).",
    no_args_is_help=True,
)
ProjectOption = typer.Option("default", "--project", "-p", help="project id or name")
DeviceOption = typer.Option(None, "--device", "-d", help="a device's own variable")
SelectorOption = typer.Option(
    None, "--selector", "-l", help="only the project's devices whose labels match: site=a"
)


def _scope(s: Item) -> str:
    if s["scope"] == "device":
        return f"device {s['device']}"
    return f"selector {s['selector']}" if s["scope"] == "selector" else "project"


_FIELDS = [
    ("name", lambda s: s["name"]),
    ("value", lambda s: s["value"]),
    ("scope", _scope),
    ("updated", lambda s: f"{ago(s['updated_at'])} by {s['updated_by']}"),
]


@app.command("set")
def set_variable(
    name: str,
    value: str | None = typer.Argument(None, help="the value (or --from-file)"),
    from_file: Path | None = typer.Option(None, "--from-file", help="the value is this file"),
    project: str = ProjectOption,
    device: str | None = DeviceOption,
    selector: str | None = SelectorOption,
    output: Format = OutputOption,
) -> None:
    """Set a variable: the devices it reaches redeploy the services it changes."""
    if from_file is not None:
        try:
            value = from_file.read_text()
        except OSError as exc:
            raise fail(f"cannot read {from_file}: {exc.strerror}", 2) from exc
    if value is None:
        raise fail("give a value, or --from-file", 2)
    if device and selector:
        raise fail("--device and --selector do not go together", 2)
    with config.client() as client:
        item = client.set_variable(name, value, project=project, device=device, selector=selector)
    show_item(item, output, _FIELDS)


@app.command("list")
def list_variables(
    project: str = ProjectOption, device: str | None = DeviceOption, output: Format = OutputOption
) -> None:
    """A project's variables (with their selectors), or a device's own."""
    with config.client() as client:
        items = client.variables(project=project, device=device)
    show_list(
        items,
        [
            ("NAME", lambda s: s["name"]),
            ("VALUE", lambda s: str(s["value"])[:40]),
            ("SCOPE", _scope),
            ("UPDATED", lambda s: ago(s["updated_at"])),
        ],
        output,
    )


@app.command("unset")
def unset(
    name: str,
    project: str = ProjectOption,
    device: str | None = DeviceOption,
    selector: str | None = SelectorOption,
) -> None:
    """Delete a variable."""
    with config.client() as client:
        client.unset_variable(name, project=project, device=device, selector=selector)
    typer.echo(f"deleted variable {name}")
