"""``edgefleet reservations create|list|show|extend|shorten|cancel``: booking
devices for a time window, with the conflicts shown before anything is held."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, Item, OutputOption, fail, print_json, show_item, show_list
from edgefleet.client.errors import ApiError

app = typer.Typer(
    help="Book devices for a time window (exclusive or shared).", no_args_is_help=True
)

_RELATIVE = re.compile(r"^\+?(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def when(text: str, option: str) -> str:
    """``now``, ``+2h``/``30m``/``3d`` from now, or an ISO time; as ISO UTC."""
    text = text.strip()
    now = datetime.now(UTC)
    if text == "now":
        return now.isoformat()
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), _UNITS[match.group(2)]
        return (now + timedelta(**{unit: amount})).isoformat()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{option}: {text!r} is not 'now', '+2h'-like or an ISO time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _window(r: Item) -> str:
    return f"{r['start'][:16]} → {r['end'][:16]}"


COLUMNS = [
    ("ID", lambda r: r["id"]),
    ("PROJECT", lambda r: r["project"]),
    ("STATE", lambda r: r["state"]),
    ("WINDOW (UTC)", _window),
    ("KIND", lambda r: "exclusive" if r["exclusive"] else "shared"),
    ("DEVICES", lambda r: ", ".join(r.get("device_names") or r["devices"])),
]


def _conflicts(items: Sequence[Item], title: str) -> None:
    if items:
        typer.echo(title)
        for item in items:
            typer.echo(f"  {item['device'] or '(booking)'}: {item['reason']}")


@app.command("create")
def create(
    project: str = typer.Option(..., "--project", "-p", help="the booking project"),
    devices: list[str] = typer.Option(None, "--devices", "-d", help="device id or name (repeat)"),
    selector: str = typer.Option(None, "--selector", "-l", help="label selector, e.g. site=chi"),
    count: int = typer.Option(None, "--count", "-n", help="book this many of the matches"),
    spread: str = typer.Option(None, "--spread", help="spread the picks across this label"),
    start: str = typer.Option("now", "--start", help="'now', '+1h', or an ISO time"),
    end: str = typer.Option(..., "--end", help="'+8h', '5d', or an ISO time"),
    exclusive: bool = typer.Option(True, "--exclusive/--shared", help="default: exclusive"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="show what would be booked, hold nothing"
    ),
    output: Format = OutputOption,
) -> None:
    """Book devices (by --devices or --selector) from --start to --end."""
    if bool(devices) == bool(selector):
        raise fail("give --devices or --selector (one of them)")
    booking: dict[str, Any] = {
        "devices": list(devices) if devices else None,
        "selector": selector,
        "count": count,
        "spread": spread,
        "exclusive": exclusive,
        "dry_run": dry_run,
    }
    with config.client() as client:
        try:
            made: Item = client.reserve(  # a dry run answers a ReservationDryRun
                project, start=when(start, "--start"), end=when(end, "--end"), **booking
            )
        except ApiError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            if exc.status == 409 and body.get("conflicts"):
                if output == Format.json:
                    print_json({"devices": [], "conflicts": body["conflicts"]})
                else:
                    _conflicts(body["conflicts"], "not booked; conflicts:")
                raise typer.Exit(1) from None
            raise
    if output == Format.json:
        print_json(made)
        return
    if dry_run:
        typer.echo(f"would book: {', '.join(made['devices']) or 'nothing'}")
        _conflicts(made["conflicts"], "conflicts:")
        _conflicts(made.get("skipped") or [], "passed over:")
        return
    typer.echo(f"booked {made['id']}: {', '.join(made['device_names'])} ({_window(made)} UTC)")


@app.command("list")
def list_reservations(
    project: str = typer.Option(None, "--project", "-p"),
    device: str = typer.Option(None, "--device", "-d", help="only those holding this device"),
    since: str = typer.Option(None, "--from", help="ending after this time"),
    until: str = typer.Option(None, "--to", help="starting before this time"),
    output: Format = OutputOption,
) -> None:
    """List reservations of your projects."""
    filters = {
        "project": project,
        "device": device,
        "from": when(since, "--from") if since else None,
        "to": when(until, "--to") if until else None,
    }
    with config.client() as client:
        items = client.reservations(**filters)
    show_list(items, COLUMNS, output)


@app.command("show")
def show(reservation: str, output: Format = OutputOption) -> None:
    """Show one reservation."""
    with config.client() as client:
        show_item(client.reservation(reservation), output, COLUMNS)


def _move(reservation: str, end: str | None, start: str | None, output: Format) -> None:
    with config.client() as client:
        changed = client.change_reservation(
            reservation,
            start=when(start, "--start") if start else None,
            end=when(end, "--end") if end else None,
        )
    show_item(changed, output, COLUMNS)


@app.command("extend")
def extend(
    reservation: str,
    end: str = typer.Option(..., "--end", help="the new end: '+2h' from now, or an ISO time"),
    start: str = typer.Option(None, "--start", help="an earlier start"),
    output: Format = OutputOption,
) -> None:
    """Move the end later (conflicts are checked again)."""
    _move(reservation, end, start, output)


@app.command("shorten")
def shorten(
    reservation: str,
    end: str = typer.Option(None, "--end", help="the new, earlier end"),
    start: str = typer.Option(None, "--start", help="a later start"),
    output: Format = OutputOption,
) -> None:
    """Move the end earlier (or the start later)."""
    if not (end or start):
        raise fail("give --end and/or --start")
    _move(reservation, end, start, output)


@app.command("cancel")
def cancel(reservation: str) -> None:
    """Cancel: jobs in it stop; the devices are free again."""
    with config.client() as client:
        client.cancel_reservation(reservation)
    typer.echo(f"cancelled {reservation}")
