"""Entry point of the ``edgefleet`` command."""

from __future__ import annotations

import sys

import typer

from edgefleet import __version__
from edgefleet.cli import admin, apps, config, data, devices, fed, jobs, registries, remote, sim
from edgefleet.cli.output import err_console
from edgefleet.client import Client, ClientError

app = typer.Typer(
    name="edgefleet",
    help="edgefleet: containerized applications on fleets of edge devices behind NAT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(devices.app, name="devices")
app.add_typer(apps.app, name="apps")
app.add_typer(jobs.app, name="jobs")
app.add_typer(data.app, name="data")
app.add_typer(fed.app, name="fed")
app.add_typer(registries.app, name="registries")
remote.register(app, devices.app)
app.command("sim")(sim.sim_command)
app.add_typer(admin.projects, name="projects")
app.add_typer(admin.users, name="users")
app.add_typer(admin.tokens, name="tokens")
app.add_typer(admin.keys, name="keys")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgefleet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    server: str = typer.Option(None, "--server", "-s", help="server URL [env: EDGEFLEET_SERVER]"),
    token: str = typer.Option(None, "--token", "-t", help="API token [env: EDGEFLEET_TOKEN]"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    config.target.server = server
    config.target.token = token


@app.command()
def login(
    server: str = typer.Option(config.DEFAULT_SERVER, "--server", "-s", help="server URL"),
    token: str = typer.Option(..., "--token", "-t", prompt=True, hide_input=True, help="API token"),
) -> None:
    """Check a token against a server and remember both for later commands."""
    server = server.rstrip("/")
    with Client(server, token) as client:
        me = client.me()
    path = config.save(server, token)
    typer.echo(f"logged in to {server} as {me['name']} (saved to {path})")


from edgefleet.cli.processes import register_all  # noqa: E402

register_all(app)


def main() -> None:
    try:
        app(prog_name="edgefleet")
    except ClientError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
