"""Reaching devices from the terminal: exec (with a TTY), logs, events,
port-forward, and device actions."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from typing import Any

import typer

from edgefleet.cli import config, output
from edgefleet.cli.exec_once import DEFAULT_TIMEOUT, exec_once
from edgefleet.cli.output import fail

STDIN, STDOUT, STDERR, CONTROL = 0, 1, 2, 3


def exec_command(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., help="device (id or name), or a job with --device and --service"
    ),
    command: list[str] = typer.Argument(None, help="command and its arguments (after --)"),
    interactive: bool = typer.Option(False, "--interactive", "-i", help="keep stdin open"),
    tty: bool = typer.Option(False, "--tty", "-t", help="allocate a terminal"),
    device: str | None = typer.Option(None, "--device", "-d", help="with a job: the device"),
    service: str | None = typer.Option(None, "--service", "-s", help="with a job: the service"),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="seconds (non-interactive)"),
) -> None:
    """Run a command on a device, or inside a job's workload.

    edgefleet exec DEVICE -- uname -a
    edgefleet exec -it DEVICE -- sh
    edgefleet exec JOB --device D --service S -- cat /etc/hostname
    """
    argv = list(command or [])
    if not argv:
        argv = ["/bin/sh"] if (interactive or tty) else []
    if not argv:
        raise fail("give a command after --, e.g. edgefleet exec DEVICE -- uname -a")
    if (device is None) != (service is None):
        raise fail(
            "give both --device and --service to run in a workload (or neither for the device)"
        )
    if interactive or tty:
        with config.client() as client:
            code = _interactive(client, target, argv, tty, device, service)
    else:
        code = exec_once(target, argv, timeout=timeout, device=device, service=service)
    raise typer.Exit(code)


def _interactive(
    client: Any, target: str, argv: list[str], tty: bool, device: str | None, service: str | None
) -> int:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    cols, rows = _size()
    params: dict[str, Any] = {
        "command": argv,
        "tty": "true" if tty else "false",
        "cols": cols,
        "rows": rows,
    }
    if device is not None:
        path = f"/api/v1/jobs/{target}/exec/ws"
        params.update(device=device, service=service)
    else:
        path = f"/api/v1/devices/{target}/exec/ws"
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    exit_code = 1
    restore = _raw_mode() if tty and sys.stdin.isatty() else None
    try:
        with connect(
            client.websocket_url(path, **params), additional_headers=headers, max_size=None
        ) as ws:
            stop = threading.Event()

            def send_resize(*_: Any) -> None:
                c, r = _size()
                # closed: the loop below reads how the session ended and says so
                with contextlib.suppress(ConnectionClosed):
                    ws.send(bytes([CONTROL]) + json.dumps({"resize": [c, r]}).encode())

            if tty and hasattr(signal, "SIGWINCH"):
                signal.signal(signal.SIGWINCH, send_resize)

            def pump_stdin() -> None:
                fd = sys.stdin.fileno()
                while not stop.is_set():
                    try:
                        data = os.read(fd, 4096)
                    except OSError:
                        break
                    if not data:
                        with contextlib.suppress(ConnectionClosed):  # as in send_resize
                            ws.send(bytes([CONTROL]) + b'{"eof": true}')
                        break
                    with contextlib.suppress(ConnectionClosed):  # as in send_resize
                        ws.send(bytes([STDIN]) + data)

            threading.Thread(target=pump_stdin, daemon=True).start()
            try:
                for message in ws:
                    if isinstance(message, str):
                        message = bytes([STDOUT]) + message.encode()
                    channel, data = message[0], message[1:]
                    if channel == STDOUT:
                        sys.stdout.buffer.write(data)
                        sys.stdout.flush()
                    elif channel == STDERR:
                        sys.stderr.buffer.write(data)
                        sys.stderr.flush()
                    elif channel == CONTROL:
                        status = json.loads(data or b"{}")
                        if "exit_code" in status:
                            exit_code = int(status["exit_code"])
                        if status.get("error"):
                            output.err_console.print(
                                f"[red]error:[/red] {status['error']}", highlight=False
                            )
            except ConnectionClosed:
                pass
            stop.set()
    finally:
        if restore is not None:
            restore()
    return exit_code


def _size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size()
        return size.columns, size.lines
    except OSError:
        return 80, 24


def _raw_mode() -> Any:
    import termios
    import tty as tty_module

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty_module.setraw(fd)

    def restore() -> None:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore


def logs_command(
    job: str = typer.Argument(..., help="job id"),
    device: str = typer.Option(None, "--device", "-d"),
    service: str = typer.Option(None, "--service", "-s"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines"),
    tail: int = typer.Option(None, "--tail", "-n", help="last N lines per service"),
    since: str = typer.Option(None, "--since", help="ISO time"),
) -> None:
    """Logs of a job's services, prefixed device/service like docker compose logs."""
    with config.client() as client:
        try:
            for line in client.logs(
                job, device=device, service=service, tail=tail, since=since, follow=follow
            ):
                print(line, flush=True)
        except KeyboardInterrupt:
            return


def events_command(
    follow: bool = typer.Option(False, "--follow", "-f", help="stream new events"),
    device: str = typer.Option(None, "--device", "-d"),
    job: str = typer.Option(None, "--job", "-j"),
    kind: str = typer.Option(None, "--kind", "-k", help="kind or prefix, e.g. device."),
    limit: int = typer.Option(50, "--limit", "-n"),
) -> None:
    """Recent events (connections, jobs, execs), or a live stream with -f."""
    with config.client() as client:
        if not follow:
            events = client.events(device=device, job=job, kind=kind)[-limit:]
            for event in events:
                print(f"{event['time']}  {event['kind']:<20} {event['message']}")
            return
        try:
            for line in client.stream_lines("/events/stream", device=device, job=job, kind=kind):
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    print(f"{event['time']}  {event['kind']:<20} {event['message']}", flush=True)
        except KeyboardInterrupt:
            return


def port_forward_command(
    target: str = typer.Argument(..., help="JOB/DEVICE/SERVICE, or DEVICE (operators)"),
    ports: str = typer.Argument(..., help="LOCAL:PORT for a service, LOCAL:HOST:PORT for a device"),
    address: str = typer.Option("127.0.0.1", "--address", help="local address to listen on"),
) -> None:
    """Forward a local TCP port to a service of a job, or to host:port on a device."""
    parts = ports.split(":")
    try:
        if "/" in target:
            job, device, service = target.split("/", 2)
            if len(parts) != 2:
                raise ValueError
            local, remote = int(parts[0]), int(parts[1])
            path = f"/api/v1/jobs/{job}/forward/ws"
            params: dict[str, Any] = {"device": device, "service": service, "port": remote}
            where = f"{service} of job {job} on {device}, port {remote}"
        else:
            if len(parts) == 2:
                local, host, remote = int(parts[0]), "127.0.0.1", int(parts[1])
            elif len(parts) == 3:
                local, host, remote = int(parts[0]), parts[1], int(parts[2])
            else:
                raise ValueError
            path = f"/api/v1/devices/{target}/forward/ws"
            params = {"host": host, "port": remote}
            where = f"{host}:{remote} on device {target}"
    except ValueError:
        raise fail("ports: LOCAL:PORT (job service) or LOCAL:HOST:PORT (device)") from None
    with config.client() as client:
        url = client.websocket_url(path, **params)
        check_url = client.websocket_url(path, **params, check="true")
        token = client.token
    refused = _refusal(check_url, token)
    if refused is not None:
        raise fail(refused)
    import asyncio  # only port-forward needs an event loop; not loaded at start-up

    try:
        asyncio.run(_forward(address, local, url, token, where))
    except KeyboardInterrupt:
        return
    except OSError as exc:
        raise fail(f"cannot listen on {address}:{local}: {exc}") from exc


def _refusal(url: str, token: str | None) -> str | None:
    """Ask the server whether this forward is allowed before listening (it opens
    nothing on the device), so a refusal is an error now, not at first use."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with connect(url, additional_headers=headers, open_timeout=30) as ws:
            ws.recv(timeout=30)
    except ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code >= 4000:
            return exc.rcvd.reason or f"refused (code {exc.rcvd.code})"
        return None
    except InvalidStatus as exc:
        return f"the server refused the forward (HTTP {exc.response.status_code})"
    except (OSError, InvalidURI, TimeoutError) as exc:
        return f"cannot reach the server: {exc}"
    return None


async def _forward(address: str, local: int, url: str, token: str | None, where: str) -> None:
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with connect(url, additional_headers=headers, max_size=None) as ws:

                async def up() -> None:
                    while data := await reader.read(65536):
                        await ws.send(data)
                    await ws.close()

                task = asyncio.create_task(up())
                try:
                    async for message in ws:
                        writer.write(message if isinstance(message, bytes) else message.encode())
                        await writer.drain()
                except ConnectionClosed as exc:
                    if exc.rcvd and exc.rcvd.code >= 4000:
                        output.err_console.print(
                            f"[red]error:[/red] {exc.rcvd.reason}", highlight=False
                        )
                finally:
                    task.cancel()
        except (OSError, InvalidStatus, ConnectionClosed) as exc:
            output.err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, address, local)
    output.err_console.print(f"forwarding {address}:{local} -> {where} (Ctrl-C to stop)")
    async with server:
        await server.serve_forever()


def register(app: typer.Typer) -> None:
    """The top-level verbs: exec, logs, events, port-forward."""
    app.command("exec")(exec_command)
    app.command("logs")(logs_command)
    app.command("events")(events_command)
    app.command("port-forward")(port_forward_command)


def register_device_commands(devices_app: typer.Typer) -> None:
    """The device actions under ``edgefleet devices`` (logs, restart, reboot, ...)."""

    @devices_app.command("logs")
    def device_logs(
        device: str,
        follow: bool = typer.Option(False, "--follow", "-f"),
        tail: int = typer.Option(200, "--tail", "-n"),
    ) -> None:
        """The agent's own log."""
        with config.client() as client:
            try:
                for line in client.agent_logs(device, tail=tail, follow=follow):
                    print(line, flush=True)
            except KeyboardInterrupt:
                return

    @devices_app.command("restart")
    def restart(device: str) -> None:
        """Restart the device's agent (workloads keep running)."""
        with config.client() as client:
            client.device_action(device, "restart")
        typer.echo(f"{device}: agent restarting")

    @devices_app.command("reboot")
    def reboot(device: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
        """Reboot the device."""
        if not yes:
            typer.confirm(f"Reboot {device}?", abort=True)
        with config.client() as client:
            client.device_action(device, "reboot", confirm=True)
        typer.echo(f"{device}: rebooting")

    @devices_app.command("identify")
    def identify(device: str, message: str = typer.Option("", "--message", "-m")) -> None:
        """Blink the device's LED (where it has one) and mark its log."""
        with config.client() as client:
            result = client.device_action(device, "identify", message=message)
        typer.echo(
            f"{device}: {'blinking' if result['result'].get('blinked') else 'marked its log'}"
        )
