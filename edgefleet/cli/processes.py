"""The process verbs: ``server``, ``agent``, ``up`` (and ``sim``). Their flags
are derived from the settings classes (see settings_command); the heavy
modules are imported only when the verb runs."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from edgefleet.agent.settings import AgentSettings
from edgefleet.cli.output import fail
from edgefleet.cli.settings_command import given, register, register_group, settings_error


def _settings(factory: Any, values: dict[str, Any]) -> Any:
    try:
        return factory(**given(values))
    except ValidationError as exc:
        raise fail(settings_error(exc), 2) from exc


# Packages only `edgefleet[server]` installs: a missing one means the slim package.
_SERVER_PACKAGES = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "aiosqlite"}


def _server_missing(exc: ModuleNotFoundError) -> typer.Exit:
    """`pip install edgefleet` is the agent, CLI and client only (issue 18): say
    what to install instead of a traceback about a missing module."""
    if (exc.name or "").split(".")[0] not in _SERVER_PACKAGES:
        raise exc
    return fail(
        f"the server is not installed here ({exc.name} is missing): "
        "pip install 'edgefleet\\[server]'",  # \[: not Rich markup
        2,
    )


def _run_server(**values: Any) -> None:
    import importlib.util

    from edgefleet.server.settings import ServerSettings

    for name in sorted(_SERVER_PACKAGES):  # not imported here: the lean process does
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError as exc:  # a finder that refuses outright, not None
            raise _server_missing(exc) from exc
        if found is None:
            raise _server_missing(ModuleNotFoundError(name=name))
    from edgefleet.server.handoff import hand_off

    hand_off(_settings(ServerSettings, values))  # served by a process without the CLI


def _run_agent(**values: Any) -> None:
    settings = _settings(AgentSettings, values)
    from edgefleet.agent.upgrade.launch import follow_current

    follow_current(settings.state_dir)  # an upgraded agent runs from its own venv
    if not settings.server and not (settings.state_dir / "device.json").exists():
        raise fail("--server is required (the URL of the edgefleet server)", 2)
    from edgefleet.cli.handoff import exec_lean

    exec_lean(settings)  # the daemon runs without Typer and the CLI loaded (issue 18)


def _run_up(**values: Any) -> None:
    from edgefleet.server.settings import ServerSettings

    try:
        from edgefleet.embedded import run_up
    except ModuleNotFoundError as exc:
        raise _server_missing(exc) from None

    demo = values.pop("demo")
    runtime = values.pop("runtime")
    settings = _settings(ServerSettings, values)
    sys.exit(run_up(settings, demo=demo is not False, runtime=runtime or "auto"))


def register_agent(app: typer.Typer) -> None:
    from edgefleet.cli import agent_datasets, agent_install, agent_local

    register_group(
        app,
        "agent",
        AgentSettings,
        _run_agent,
        help="Run the device daemon: enroll, connect out to the server, run the device's jobs.",
        commands=[
            (agent_datasets.app, "datasets"),
            (agent_local.app, None),
            (agent_install.app, None),  # install, uninstall: a systemd service (issue 18)
        ],
    )


def register_server(app: typer.Typer) -> None:
    from edgefleet.server.settings import ServerSettings  # not on the agent's path

    register(
        app,
        "server",
        ServerSettings,
        _run_server,
        help="Run the controller: REST API, portal, agents' gateway and app proxy.",
    )


def register_up(app: typer.Typer) -> None:
    from edgefleet.server.settings import ServerSettings  # not on the agent's path

    register(
        app,
        "up",
        ServerSettings,
        _run_up,
        help="Start a server and one local agent on this machine, with a demo job.",
        exclude={
            "bus",
            "bus_token",
            "bus_creds_file",
            "bus_ca_file",
            "bus_cert_file",
            "bus_key_file",
            "bus_connect_timeout",
            "replica_id",
            "tls_cert",
            "tls_key",
            "object_store",
        },
        extra=[
            inspect.Parameter(
                "demo",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    bool | None,
                    typer.Option(
                        "--demo/--no-demo", help="deploy the demo application (default: yes)"
                    ),
                ],
            ),
            inspect.Parameter(
                "runtime",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    str | None,
                    typer.Option(
                        "--runtime", help="runtime of the local agent: auto, docker or process"
                    ),
                ],
            ),
        ],
    )
