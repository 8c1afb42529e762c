"""``edgefleet secrets``: project secrets, delivered to services as files.

Values are read from standard input, a file or a hidden prompt, never from
the command line (where ``ps`` and shell history would keep them)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, fail, show_item, show_list

app = typer.Typer(
    help="Project secrets: stored encrypted, never shown again, readable by services at "
    "/run/secrets/NAME.",
    no_args_is_help=True,
)
ProjectOption = typer.Option("default", "--project", "-p", help="project id or name")
StdinOption = typer.Option(False, "--value-stdin", help="read the value from standard input")
FileOption = typer.Option(None, "--from-file", help="read the value from this file")

_FIELDS = [
    ("name", lambda s: s["name"]),
    ("version", lambda s: s["version"]),
    ("project", lambda s: s["project"]),
    ("updated", lambda s: f"{ago(s['updated_at'])} by {s['updated_by']}"),
]


def _value(stdin: bool, from_file: Path | None) -> str:
    if stdin:
        value = sys.stdin.read().rstrip("\n")
    elif from_file is not None:
        try:
            value = from_file.read_text()
        except OSError as exc:
            raise fail(f"cannot read {from_file}: {exc.strerror}", 2) from exc
    else:
        value = typer.prompt("value", hide_input=True, confirmation_prompt=True)
    if not value:
        raise fail("the value is empty", 2)
    return value


def _store(name: str, value: str, project: str, output: Format, *, rotate: bool) -> None:
    """Send a new secret (or a secret's new value) and show what the server keeps."""
    with config.client() as client:
        write = client.rotate_secret if rotate else client.create_secret
        item = write(name, value, project=project)
    show_item(item, output, _FIELDS)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="the name Compose files use under secrets:"),
    value_stdin: bool = StdinOption,
    from_file: Path | None = FileOption,
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Store a new secret (operator or owner)."""
    _store(name, _value(value_stdin, from_file), project, output, rotate=False)


@app.command("rotate")
def rotate(
    name: str,
    value_stdin: bool = StdinOption,
    from_file: Path | None = FileOption,
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Give a secret a new value: the services that use it restart with it, only they."""
    _store(name, _value(value_stdin, from_file), project, output, rotate=True)


@app.command("list")
def list_secrets(project: str = ProjectOption, output: Format = OutputOption) -> None:
    """The project's secrets: names and versions (values are never shown)."""
    with config.client() as client:
        items = client.secrets(project)
    show_list(
        items,
        [
            ("NAME", lambda s: s["name"]),
            ("VERSION", lambda s: s["version"]),
            ("UPDATED", lambda s: ago(s["updated_at"])),
            ("BY", lambda s: s["updated_by"]),
        ],
        output,
    )


@app.command("rm")
def remove(name: str, project: str = ProjectOption) -> None:
    """Delete a secret (running services keep the file they have)."""
    with config.client() as client:
        client.delete_secret(name, project=project)
    typer.echo(f"deleted secret {name}")
