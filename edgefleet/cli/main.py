"""Entry point of the ``edgefleet`` command.

The verbs are registered lazily (see :mod:`edgefleet.cli.lazy`): start-up
imports Typer and this module, and a verb's own module, with httpx, Rich or
pydantic as it needs them, only when that verb runs.
``tests/unit/cli/test_startup.py`` fails if a heavy module comes back on the
start-up path.
"""

from __future__ import annotations

import sys

import typer

from edgefleet import __version__
from edgefleet.cli import config, output
from edgefleet.cli.lazy import Loader, lazy_group
from edgefleet.client.errors import ClientError


def _remote(app: typer.Typer) -> None:
    from edgefleet.cli import remote

    remote.register(app)


def _sim(app: typer.Typer) -> None:
    from edgefleet.cli import sim

    app.command("sim")(sim.sim_command)


def _login(app: typer.Typer) -> None:
    app.command()(login)


def _processes(name: str) -> Loader:
    """One long-running process's verb: ``edgefleet server`` loads neither the
    agent's verbs (its datasets and local API modules) nor the other way round."""

    def load(app: typer.Typer) -> None:
        from edgefleet.cli import processes

        getattr(processes, f"register_{name}")(app)

    return load


def _devices(app: typer.Typer) -> None:
    from edgefleet.cli import agent_upgrade, devices, loans, remote, requirements

    agent_upgrade.register_device_commands(devices.app)  # upgrade-agent (issue 18)
    remote.register_device_commands(devices.app)
    loans.register_device_commands(devices.app)  # lend, loans, revoke-loan
    requirements.register_device_commands(devices.app)  # require, requirements
    from edgefleet.cli import telemetry

    telemetry.register_device_commands(devices.app)  # metrics (issue 18)
    app.add_typer(devices.app, name="devices")


def _agent_releases() -> typer.Typer:
    from edgefleet.cli import agent_upgrade

    return agent_upgrade.app


def _group(module: str, attribute: str = "app") -> Loader:
    """Loader of a sub-app that is a module's Typer (``edgefleet.cli.<module>.<attribute>``)."""

    def load(app: typer.Typer) -> None:
        from importlib import import_module

        sub = getattr(import_module(f"edgefleet.cli.{module}"), attribute)
        app.add_typer(sub, name=attribute if module == "admin" else module)

    return load


# Name -> loader, in the order `edgefleet --help` has always listed them.
_VERBS: dict[str, Loader] = {
    "exec": _remote,
    "logs": _remote,
    "events": _remote,
    "port-forward": _remote,
    "sim": _sim,
    "login": _login,
    "server": _processes("server"),
    "up": _processes("up"),
    "devices": _devices,
    "apps": _group("apps"),
    "jobs": _group("jobs"),
    "data": _group("data"),
    "fed": _group("fed"),
    "registries": _group("registries"),
    "alerts": _group("alerts"),  # alert rules, webhooks, alerts (issue 18)
    "reservations": _group("reservations"),
    "secrets": _group("secrets"),
    "variables": _group("variables"),
    "instances": _group("instances"),  # personal instances (issue 21)
    "volumes": _group("volumes"),  # project volumes (issue 21)
    "projects": _group("admin", "projects"),
    "users": _group("admin", "users"),
    "tokens": _group("admin", "tokens"),
    "keys": _group("admin", "keys"),
    "agent": _processes("agent"),
    "agent-releases": lambda app: app.add_typer(_agent_releases(), name="agent-releases"),
}

app = typer.Typer(
    name="edgefleet",
    help="edgefleet: containerized applications on fleets of edge devices behind NAT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=lazy_group(_VERBS),
)


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


def login(
    server: str = typer.Option(config.DEFAULT_SERVER, "--server", "-s", help="server URL"),
    token: str | None = typer.Option(
        None, "--token", "-t", help="API token (asked for when not given)"
    ),
    sso: bool = typer.Option(
        False, "--sso", help="sign in with your institution (OpenID Connect) in a browser"
    ),
    paste: bool = typer.Option(
        False, "--paste", help="--sso with the browser elsewhere: type in the code it shows"
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="--sso: only print the URL"),
    device: bool | None = typer.Option(
        None,
        "--device/--no-device",
        help="--sso: device sign-in (a code to enter elsewhere); default: when the provider "
        "offers it and there is no browser here",
    ),
    wait: float = typer.Option(600, "--timeout", help="--sso: seconds to wait for the browser"),
) -> None:
    """Check a token against a server and remember both for later commands;
    with --sso, get a token by signing in with your institution."""
    from edgefleet.client.client import Client

    server = server.rstrip("/")
    if sso or paste:
        from edgefleet.cli import sso as single_sign_on

        opened = not no_browser and not paste and single_sign_on.browser_available()
        if no_browser and device is None:
            device = False  # the user asked for the URL to open themselves
        got = single_sign_on.sso_token(
            server, open_browser=opened, paste=paste, device=device, timeout=wait
        )
        path = config.save(server, got["token"])
        expires = f", token expires {got['expires_at']}" if got.get("expires_at") else ""
        typer.echo(f"logged in to {server} as {got['user']} (saved to {path}{expires})")
        return
    if token is None:
        token = typer.prompt("Token", hide_input=True)
    with Client(server, token) as client:
        me = client.me()
    path = config.save(server, token)
    typer.echo(f"logged in to {server} as {me['name']} (saved to {path})")


def main() -> None:
    try:
        app(prog_name="edgefleet")
    except ClientError as exc:
        output.err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
