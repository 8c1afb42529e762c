"""``edgefleet devices metrics DEVICE``: a device's health over time (issue 18)."""

from __future__ import annotations

from typing import Any

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, show_list


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f}{unit}"
        size /= 1024
    return f"{size:.1f}TiB"


COLUMNS: list[tuple[str, Any]] = [
    ("TIME", lambda p: p["time"][:19].replace("T", " ")),
    ("CPU", lambda p: _pct(p["cpu"])),
    ("MEMORY", lambda p: _pct(p["memory"])),
    ("DISK", lambda p: _pct(p["disk"])),
    ("TEMP", lambda p: "-" if p["temperature"] is None else f"{p['temperature']:.1f}°C"),
    ("NET RX", lambda p: _bytes(p["net_rx"])),
    ("NET TX", lambda p: _bytes(p["net_tx"])),
    ("SAMPLES", lambda p: p["samples"]),
]


def metrics(
    device: str = typer.Argument(..., help="device id or name"),
    since: str = typer.Option("1h", "--since", help="ISO time or a duration ago (1h, 2d)"),
    until: str = typer.Option(None, "--until", help="ISO time or a duration ago"),
    step: str = typer.Option(None, "--step", help="average into buckets of this (5m, 1h)"),
    limit: int = typer.Option(1000, "--limit", help="at most this many rows"),
    output: Format = OutputOption,
) -> None:
    """CPU, memory, disk, temperature and network of a device over time."""
    with config.client() as client:
        points = client.device_metrics(device, since=since, until=until, step=step, limit=limit)
    show_list(points, COLUMNS, output)


def register_device_commands(devices: typer.Typer) -> None:
    devices.command("metrics")(metrics)
