"""Periodic jobs in the CLI: ``edgefleet jobs create --schedule CRON`` and
``edgefleet jobs runs JOB``."""

from __future__ import annotations

from typing import Any

import typer

from edgefleet.cli import config
from edgefleet.cli.output import Format, Item, OutputOption, fail, show_list

RUN_COLUMNS = [
    ("DEVICE", lambda r: r["device_name"]),
    ("SCHEDULED", lambda r: r["scheduled"]),
    ("STARTED", lambda r: r.get("started")),
    ("FINISHED", lambda r: r.get("finished")),
    ("EXIT", lambda r: r.get("exit_code")),
    ("STATE", lambda r: r["state"]),
    ("ERROR", lambda r: r.get("error")),
]


def body(cron: str | None, timezone: str | None, overlap: str | None) -> dict[str, Any] | None:
    """The job's ``schedule`` from command-line flags (None: not periodic)."""
    if cron is None:
        if timezone is not None or overlap is not None:
            raise fail("--timezone and --overlap go with --schedule CRON")
        return None
    schedule: dict[str, Any] = {"cron": cron}
    if timezone is not None:
        schedule["timezone"] = timezone
    if overlap is not None:
        schedule["overlap"] = overlap
    return schedule


def print_schedule(job: Item) -> None:
    """One line under ``edgefleet jobs show`` for a periodic job."""
    schedule = job.get("schedule")
    if not schedule:
        return
    from edgefleet.cli.output import console

    console.print(
        f"schedule: {schedule['cron']} ({schedule['timezone']}, overlap {schedule['overlap']}), "
        f"next {schedule.get('next') or '-'}; runs: edgefleet jobs runs {job['id']}"
    )


def runs(
    job: str = typer.Argument(..., help="job id"),
    device: str = typer.Option(None, "--device", "-d", help="only this device (id or name)"),
    state: str = typer.Option(None, "--state", help="ok, failed, skipped (comma-separated)"),
    limit: int = typer.Option(50, "--limit", "-n", help="newest N runs"),
    output: Format = OutputOption,
) -> None:
    """Runs of a periodic job, newest first: device, fire time, exit code, state.
    Runs made while a device was offline appear once it reconnects."""
    with config.client() as client:
        items = list(client.job_runs(job, device=device, state=state, limit=limit))
    show_list(items, RUN_COLUMNS, output)
