from __future__ import annotations

from typing import Any

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, fail, labels_text, show_item, show_list
from edgefleet.labels import LabelError, check_key, check_value

app = typer.Typer(help="Devices of your projects.", no_args_is_help=True)


def _status(device: dict[str, Any]) -> str:
    if not device["is_online"]:
        return "offline"
    return "ready" if device["is_ready"] else "online"


COLUMNS = [
    ("ID", lambda d: d["id"]),
    ("NAME", lambda d: d["name"]),
    ("PROJECT", lambda d: d["project"]),
    ("STATUS", _status),
    ("LAST SEEN", lambda d: ago(d.get("last_seen"))),
    ("ARCH", lambda d: d["resources"].get("arch")),
    ("LABELS", lambda d: labels_text(d["labels"])),
]


@app.command("list")
def list_devices(
    selector: str = typer.Option(
        None, "--selector", "-l", help="label selector, e.g. site=a,tier!=test"
    ),
    online: bool = typer.Option(None, "--online/--offline", help="only online / offline devices"),
    project: str = typer.Option(None, "--project", "-p"),
    output: Format = OutputOption,
) -> None:
    """List devices."""
    with config.client() as client:
        items = client.devices(selector=selector, online=online, project=project)
    show_list(items, COLUMNS, output)


@app.command("show")
def show(
    device: str = typer.Argument(..., help="device id or name"), output: Format = OutputOption
) -> None:
    """Show one device."""
    with config.client() as client:
        item = client.device(device)
    fields = [
        ("id", lambda d: d["id"]),
        ("name", lambda d: d["name"]),
        ("project", lambda d: d["project"]),
        ("status", _status),
        ("last seen", lambda d: ago(d.get("last_seen"))),
        ("agent", lambda d: d["agent_version"]),
        ("labels", lambda d: labels_text(d["labels"])),
        ("metadata", lambda d: d["metadata"]),
        ("resources", lambda d: d["resources"]),
        ("runtimes", lambda d: ", ".join(d["runtimes"])),
        ("peripherals", lambda d: ", ".join(f"{p['kind']}:{p['name']}" for p in d["peripherals"])),
    ]
    show_item(item, output, fields)


def parse_label_changes(changes: list[str]) -> dict[str, str | None]:
    """``k=v`` sets, ``k-`` removes (as kubectl label does)."""
    result: dict[str, str | None] = {}
    for change in changes:
        try:
            if change.endswith("-") and "=" not in change:
                result[check_key(change[:-1])] = None
                continue
            key, eq, value = change.partition("=")
            if not eq:
                raise LabelError(f"{change!r}: expected key=value or key-")
            result[check_key(key)] = check_value(key, value)
        except LabelError as exc:
            raise fail(str(exc)) from exc
    return result


@app.command("label")
def label(
    device: str = typer.Argument(..., help="device id or name"),
    changes: list[str] = typer.Argument(..., help="k=v to set, k- to remove"),
    output: Format = OutputOption,
) -> None:
    """Set or remove labels of a device."""
    with config.client() as client:
        item = client.update_device(device, labels=parse_label_changes(changes))
    if output == Format.json:
        show_item(item, output)
    else:
        typer.echo(f"{item['name']}: {labels_text(item['labels']) or '(no labels)'}")


@app.command("rename")
def rename(device: str, name: str, output: Format = OutputOption) -> None:
    """Rename a device."""
    with config.client() as client:
        item = client.update_device(device, name=name)
    show_item(item, output, [("id", lambda d: d["id"]), ("name", lambda d: d["name"])])


@app.command("rm")
def remove(
    devices: list[str] = typer.Argument(..., help="device ids or names"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
) -> None:
    """Delete devices; their credentials are revoked and their agents stop."""
    if not yes:
        typer.confirm(f"Delete {', '.join(devices)}? Their agents will stop for good", abort=True)
    with config.client() as client:
        for device in devices:
            client.delete_device(device)
            typer.echo(f"deleted {device}")
