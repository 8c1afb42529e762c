"""``edgefleet registries``: logins to private registries, per project."""

from __future__ import annotations

import sys

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, ago, fail, show_item, show_list

app = typer.Typer(
    help="Credentials for private registries (stored encrypted; devices pull with them).",
    no_args_is_help=True,
)
ProjectOption = typer.Option("default", "--project", "-p", help="project id or name")


@app.command("add")
def add(
    registry: str = typer.Argument(..., help="registry host: ghcr.io, registry.example.com:5000"),
    username: str = typer.Option(..., "--username", "-u"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password or token from standard input"
    ),
    password: str | None = typer.Option(
        None, "--password", help="the password or token (prefer --password-stdin or the prompt)"
    ),
    project: str = ProjectOption,
    output: Format = OutputOption,
) -> None:
    """Store (or replace) a project's login to a registry."""
    if password_stdin:
        password = sys.stdin.read().rstrip("\n")
    elif password is None:
        password = typer.prompt("password", hide_input=True)
    if not password:
        raise fail("the password is empty", 2)
    with config.client() as client:
        item = client.add_registry(registry, username, password, project=project)
    show_item(
        item,
        output,
        [
            ("registry", lambda r: r["registry"]),
            ("username", lambda r: r["username"]),
            ("project", lambda r: r["project"]),
        ],
    )


@app.command("list")
def list_registries(project: str = ProjectOption, output: Format = OutputOption) -> None:
    """Registries with stored logins (the passwords are never shown)."""
    with config.client() as client:
        items = client.registries(project)
    show_list(
        items,
        [
            ("REGISTRY", lambda r: r["registry"]),
            ("USERNAME", lambda r: r["username"]),
            ("UPDATED", lambda r: ago(r["updated_at"])),
            ("BY", lambda r: r["created_by"]),
        ],
        output,
    )


@app.command("rm")
def remove(registry: str, project: str = ProjectOption) -> None:
    """Forget a project's login to a registry."""
    with config.client() as client:
        client.remove_registry(registry, project=project)
    typer.echo(f"removed the login to {registry}")
