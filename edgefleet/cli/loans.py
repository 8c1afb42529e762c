"""``edgefleet devices lend|loans|revoke-loan``: lending a device (or every
device a selector matches, one loan each) to another project."""

from __future__ import annotations

from typing import Any

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, OutputOption, fail, show_list

COLUMNS = [
    ("ID", lambda loan: loan["id"]),
    ("DEVICE", lambda loan: loan["device_name"]),
    ("TO", lambda loan: loan["project"]),
    ("SHARE", lambda loan: f"{loan['time_share']:.0%} of {loan['share_window_hours']}h"),
    ("EXPOSED LABELS", lambda loan: ",".join(loan["expose_labels"]) or "-"),
    ("BY", lambda loan: loan["created_by"]),
]


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().rstrip("b")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise fail(f"--max-memory: {text!r} is not a size like 256m or 1g") from None


def lend(
    device: str = typer.Argument(None, help="device id or name (or use --selector)"),
    project: str = typer.Option(..., "--to", help='the guest project, or "*" for every project'),
    selector: str = typer.Option(None, "--selector", "-l", help="lend every matching device"),
    owner: str = typer.Option(None, "--project", "-p", help="with --selector: the owning project"),
    expose: list[str] = typer.Option(None, "--expose-label", help="label key guests see (repeat)"),
    allow_process: bool = typer.Option(False, "--allow-process", help="guests may run processes"),
    allow_cap: list[str] = typer.Option(None, "--allow-cap", help="capability (repeat)"),
    allow_peripheral: list[str] = typer.Option(
        None, "--allow-peripheral", help="peripheral kind guests may require (repeat)"
    ),
    max_memory: str = typer.Option(None, "--max-memory", help="per-service cap, e.g. 256m"),
    max_pids: int = typer.Option(None, "--max-pids", help="per-service process cap"),
    share: float = typer.Option(1.0, "--time-share", help="fraction of the window (0-1]"),
    window: int = typer.Option(168, "--share-window-hours", help="the rolling window"),
    output: Format = OutputOption,
) -> None:
    """Lend a device to another project, with limits."""
    if (device is None) == (selector is None):
        raise fail("give a DEVICE or --selector (one of them)")
    rights: dict[str, Any] = {
        "process": allow_process,
        "capabilities": list(allow_cap or []),
        "peripheral_kinds": list(allow_peripheral or []),
        "max_memory": _size(max_memory) if max_memory else None,
        "max_pids": max_pids,
    }
    limits = {
        "rights": rights,
        "expose_labels": list(expose or []),
        "time_share": share,
        "share_window_hours": window,
    }
    with config.client() as client:
        targets = (
            [d["id"] for d in client.devices(selector=selector, project=owner)]
            if selector
            else [device]
        )
        if not targets:
            raise fail(f"no device matches {selector!r}")
        made = [client.lend_device(target, project, **limits) for target in targets]
    show_list(made, COLUMNS, output)


def loans(
    device: str = typer.Argument(..., help="device id or name"), output: Format = OutputOption
) -> None:
    """List a device's loans."""
    with config.client() as client:
        show_list(client.loans(device), COLUMNS, output)


def revoke_loan(
    device: str = typer.Argument(..., help="device id or name"),
    project: str = typer.Argument(..., help='the guest project, or "*"'),
) -> None:
    """Revoke a loan: the guest's workloads on the device stop within moments."""
    with config.client() as client:
        client.revoke_loan(device, project)
    typer.echo(f"revoked the loan of {device} to {project}")


def register_device_commands(devices: typer.Typer) -> None:
    devices.command("lend")(lend)
    devices.command("loans")(loans)
    devices.command("revoke-loan")(revoke_loan)
