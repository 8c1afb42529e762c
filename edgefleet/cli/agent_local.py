"""``edgefleet agent status|jobs|logs|restart|stop|start|apps``: the device's owner,
on the device, through the agent's local API (works with no server).

Talks HTTP over the agent's Unix socket (``<state-dir>/agent.sock`` unless
``--socket``) with httpx's UDS transport; who may use it is the socket's
owner and group (``edgefleet agent --local-api-group GROUP``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgefleet.agent.settings import default_state_dir

if TYPE_CHECKING:
    import httpx

from edgefleet.cli.output import Format, OutputOption, fail, print_json, show_item, show_list

app = typer.Typer(no_args_is_help=True)
apps = typer.Typer(
    help="The owner's own apps on this device, beside the fleet's.", no_args_is_help=True
)
app.add_typer(apps, name="apps")

StateDirOption = typer.Option(
    None, "--state-dir", help="the agent's state dir [env: EDGEFLEET_STATE_DIR]"
)
SocketOption = typer.Option(
    None, "--socket", help="the local API socket (default: <state-dir>/agent.sock)"
)


def _socket(ctx: typer.Context, state_dir: str | None, socket: str | None) -> Path:
    """--socket, else --state-dir (here or given to ``agent``), else the environment.
    Plain strings, not checked paths: the owner's group may reach the socket
    in a state dir it cannot read (0710)."""
    if socket:
        return Path(socket)
    context: Any = ctx
    while not state_dir and context is not None:
        state_dir = context.params.get("state_dir") or None
        context = context.parent
    if not state_dir:
        state_dir = os.environ.get("EDGEFLEET_STATE_DIR") or str(default_state_dir())
    return Path(state_dir) / "agent.sock"


def _client(sock: Path, timeout: float | None = 30.0) -> httpx.Client:
    import httpx  # loaded when a verb runs, not when the agent's verbs are listed

    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://agent", timeout=timeout
    )


def _call(sock: Path, method: str, path: str, body: Any = None) -> Any:
    import httpx

    try:
        with _client(sock) as client:
            response = client.request(method, path, json=body)
    except httpx.TransportError as exc:
        raise _unreachable(sock, exc) from exc
    return _answer(response)


def _unreachable(sock: Path, exc: Exception) -> typer.Exit:
    if isinstance(exc.__cause__ or exc.__context__, PermissionError) or "ermission" in str(exc):
        return fail(f"permission denied on {sock}: run as root or a member of its group")
    if not sock.exists():
        return fail(f"no local API at {sock}: is the agent running with this --state-dir?")
    return fail(f"cannot reach the agent at {sock}: {exc}")


def _key(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda item: item[name]


def _answer(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text}
    if response.status_code >= 400:
        message = body.get("error") if isinstance(body, dict) else None
        raise fail(str(message or f"the agent answered {response.status_code}"))
    return body


@app.command("status")
def status(
    ctx: typer.Context,
    state_dir: str | None = StateDirOption,
    socket: str | None = SocketOption,
    output: Format = OutputOption,
) -> None:
    """The device's identity, connection state and counts (no server needed)."""
    found = _call(_socket(ctx, state_dir, socket), "GET", "/status")
    if output == Format.json:
        print_json(found)
        return
    connection = found["connection"]
    show_item(
        {
            "device": f"{found['device']['name']} ({found['device']['id']})",
            "project": found["device"]["project"],
            "server": connection["server"] if connection["connected"] else "not connected",
            "jobs": found["jobs"],
            "local apps": found["local_apps"],
            "unreported actions": found["actions_unreported"],
            "runtimes": ", ".join(found["runtimes"]),
            "agent": found["agent_version"],
        },
        output,
        [
            (k, _key(k))
            for k in (
                "device",
                "project",
                "server",
                "jobs",
                "local apps",
                "unreported actions",
                "runtimes",
                "agent",
            )
        ],
    )


@app.command("jobs")
def jobs(
    ctx: typer.Context,
    state_dir: str | None = StateDirOption,
    socket: str | None = SocketOption,
    output: Format = OutputOption,
) -> None:
    """Jobs and local apps on this device, with their services' states and revisions."""
    items = _call(_socket(ctx, state_dir, socket), "GET", "/jobs")["items"]
    if output == Format.json:
        print_json(items)
        return
    rows = [
        {
            "job": j["id"],
            "app": j["application"] + (" (local)" if j["local_app"] else ""),
            "version": j["version"],
            "revision": j["revision"],
            "state": j["state"],
            "services": ", ".join(
                f"{s['name']}={s['state']}" + ("(held)" if s["held_locally"] else "")
                for s in j["services"]
            ),
        }
        for j in items
    ]
    show_list(
        rows,
        [(c.upper(), _key(c)) for c in ("job", "app", "version", "revision", "state", "services")],
        output,
    )


@app.command("logs")
def logs(
    ctx: typer.Context,
    job: str = typer.Argument(..., help="job id (or local-NAME for a local app)"),
    service: str = typer.Argument(..., help="service name"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new output"),
    tail: int | None = typer.Option(None, "--tail", min=0, help="only the last N lines"),
    state_dir: str | None = StateDirOption,
    socket: str | None = SocketOption,
) -> None:
    """A service's output, from the engine on this device."""
    import httpx

    sock = _socket(ctx, state_dir, socket)
    params: dict[str, str] = {"follow": "1" if follow else "0"}
    if tail is not None:
        params["tail"] = str(tail)
    try:
        with (
            _client(sock, timeout=None) as client,
            client.stream("GET", f"/jobs/{job}/services/{service}/logs", params=params) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _answer(response)
            for chunk in response.iter_bytes():
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
    except httpx.TransportError as exc:
        raise _unreachable(sock, exc) from exc
    except KeyboardInterrupt:
        return


def _act(
    ctx: typer.Context, action: str, job: str, service: str, sock: Path, output: Format
) -> None:
    done = _call(sock, "POST", f"/jobs/{job}/services/{service}/{action}")
    if output == Format.json:
        print_json(done)
        return
    state = (done.get("status") or {}).get("services", {}).get(service, {}).get("state", "?")
    typer.echo(
        f"{action}: {service} of {job} is now {state} (reported to the server when it is reachable)"
    )


def _action_command(action: str, doc: str) -> None:
    def command(
        ctx: typer.Context,
        job: str = typer.Argument(..., help="job id (or local-NAME for a local app)"),
        service: str = typer.Argument(..., help="service name"),
        state_dir: str | None = StateDirOption,
        socket: str | None = SocketOption,
        output: Format = OutputOption,
    ) -> None:
        _act(ctx, action, job, service, _socket(ctx, state_dir, socket), output)

    command.__doc__ = doc
    app.command(action)(command)


_action_command("restart", "Restart a service now (with or without a server).")
_action_command(
    "stop", "Stop a service and keep it stopped until 'agent start' or a new revision arrives."
)
_action_command("start", "Start a service stopped with 'agent stop'.")


@apps.command("run")
def apps_run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the app's name (lowercase letters, digits, '-')"),
    file: Path = typer.Option(
        ..., "--file", "-f", help="Compose file", exists=True, dir_okay=False
    ),
    version: str = typer.Option("local", "--version", help="a version label for the app"),
    state_dir: str | None = StateDirOption,
    socket: str | None = SocketOption,
    output: Format = OutputOption,
) -> None:
    """Run (or replace) your own app on this device, under the device's policy."""
    body = {"name": name, "compose": file.read_text(), "version": version}
    found = _call(_socket(ctx, state_dir, socket), "POST", "/apps", body)
    if output == Format.json:
        print_json(found)
        return
    typer.echo(f"local app {found['name']} ({found['job_id']}) is starting")


@apps.command("list")
def apps_list(
    ctx: typer.Context,
    state_dir: str | None = StateDirOption,
    socket: str | None = SocketOption,
    output: Format = OutputOption,
) -> None:
    """Your local apps on this device."""
    items = _call(_socket(ctx, state_dir, socket), "GET", "/apps")["items"]
    show_list(
        items,
        [
            ("NAME", lambda a: a["name"]),
            ("JOB", lambda a: a["job_id"]),
            ("VERSION", lambda a: a["version"]),
            ("SERVICES", lambda a: ", ".join(f"{k}={v}" for k, v in a["services"].items())),
        ],
        output,
    )


@apps.command("rm")
def apps_rm(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the app's name"),
    state_dir: str | None = StateDirOption,
    socket: str | None = SocketOption,
) -> None:
    """Remove a local app (its containers, networks and volumes)."""
    _call(_socket(ctx, state_dir, socket), "DELETE", f"/apps/{name}")
    typer.echo(f"local app {name} removed")
