"""``edgefleet volumes``: project volumes, storage that outlives a job.

Compose mounts one as ``volumes: {NAME: {external: true,
x-edgefleet-project-volume: true}}``; each device creates it the first time a
job there mounts it and keeps it until it is removed here."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, Item, OutputOption, ago, fail, show_item, show_list

app = typer.Typer(
    help="Project volumes: storage kept on devices across jobs.", no_args_is_help=True
)
ProjectOption = typer.Option("default", "--project", "-p", help="project id or name")


def _devices(item: Item) -> None:
    rows: list[Item] = item.get("devices") or []
    show_list(
        rows,
        [
            ("DEVICE", lambda d: d["device_name"]),
            ("STATE", lambda d: d["state"]),
            ("SIZE", lambda d: "-" if d.get("size") is None else f"{d['size']} B"),
            ("ERROR", lambda d: d.get("error") or ""),
        ],
        Format.table,
    )


@app.command("create")
def create(name: str, project: str = ProjectOption, output: Format = OutputOption) -> None:
    """Declare a project volume (developer role and up)."""
    with config.client() as client:
        show_item(client.create_volume(name, project), output)


@app.command("list")
def list_volumes(project: str = ProjectOption, output: Format = OutputOption) -> None:
    """The project's volumes."""
    with config.client() as client:
        items = client.volumes(project)
    show_list(
        items,
        [
            ("NAME", lambda v: v["name"]),
            ("ON DEVICES AS", lambda v: v["engine_name"]),
            ("CREATED", lambda v: ago(v["created_at"])),
            ("BY", lambda v: v["created_by"]),
        ],
        output,
    )


@app.command("show")
def show(name: str, project: str = ProjectOption, output: Format = OutputOption) -> None:
    """The volume's state and size on each device of the project."""
    with config.client() as client:
        item = client.volume(name, project)
    if output != Format.table:
        show_item(item, output)
        return
    _devices(item)


@app.command("rm")
def remove(name: str, project: str = ProjectOption, output: Format = OutputOption) -> None:
    """Remove the volume from every online device of the project, and forget it."""
    with config.client() as client:
        item = client.delete_volume(name, project)
    if output != Format.table:
        show_item(item, output)
        return
    _devices(item)


@app.command("download")
def download(
    name: str,
    device: str = typer.Option(..., "--device", "-d", help="the device whose copy to fetch"),
    out: Path = typer.Option(..., "--out", "-o", help="the tar file to write ('-': stdout)"),
    project: str = ProjectOption,
) -> None:
    """Fetch the volume's files on one device as a tar."""
    with config.client() as client:
        if str(out) == "-":
            written = client.download_volume(name, device, sys.stdout.buffer, project)
        else:
            try:
                with out.open("wb") as sink:
                    written = client.download_volume(name, device, sink, project)
            except OSError as exc:
                raise fail(f"cannot write {out}: {exc.strerror}", 2) from exc
    typer.echo(f"{written} bytes", err=True)
