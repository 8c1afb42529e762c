"""``edgefleet jobs``: deploy applications to devices and watch them run."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from edgefleet.cli import config, rollout, schedule
from edgefleet.cli.output import Format, Item, OutputOption, fail, show_item, show_list
from edgefleet.client import Client
from edgefleet.client.models import Job
from edgefleet.labels import LabelError, parse_assignments

app = typer.Typer(help="Jobs: an application deployed to devices.", no_args_is_help=True)
app.add_typer(rollout.app, name="rollout")
app.command("runs")(schedule.runs)

SETTLED = ("running", "completed", "failed", "cancelled", "expired")
STATE_STYLE = {
    "running": "green",
    "completed": "green",
    "failed": "red",
    "exited": "cyan",
    "pulling": "yellow",
    "starting": "yellow",
    "pending": "dim",
    "removed": "dim",
}


def _counts(job: dict[str, Any]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(job.get("counts", {}).items())) or "-"


COLUMNS = [
    ("ID", lambda j: j["id"]),
    ("APPLICATION", lambda j: f"{j['application']}:{j['version']}"),
    ("STATE", lambda j: j["state"]),
    ("TARGET", lambda j: j.get("selector") or ",".join(j.get("targets") or [])),
    ("DEVICES", _counts),
    ("ERROR", lambda j: j.get("error")),
]


def device_table(job: Item) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("DEVICE", "STATE", "VERSION", "SERVICES", "ERROR"):
        table.add_column(title)
    for device in job["devices"]:
        style = STATE_STYLE.get(device["state"], "")
        services = ", ".join(
            f"{name}:{s['state']}" + (f"({s['restarts']}↻)" if s.get("restarts") else "")
            for name, s in sorted(device["services"].items())
        )
        table.add_row(
            device["name"],
            f"[{style}]{device['state']}[/{style}]" if style else device["state"],
            device.get("version") or "-",
            services or "-",
            device.get("error") or "",
        )
    return table


def watch(client: Client, job_id: str, timeout: float) -> Job:
    """Live view of a rollout until the job settles (or ``timeout``)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} running"),
    )
    task = progress.add_task("rolling out", total=1)
    deadline = time.monotonic() + timeout
    job = client.job(job_id)
    with Live(refresh_per_second=4, transient=False) as live:
        while True:
            job = client.job(job_id)
            eligible = [d for d in job["devices"] if d["eligible"] and d["assigned"]]
            running = sum(
                1
                for d in eligible
                if d["state"] in ("running", "exited") and d.get("version") == job["version"]
            )
            progress.update(
                task,
                total=max(len(eligible), 1),
                completed=running,
                description=f"job {job_id} [{job['state']}]",
            )
            grid = Table.grid()
            grid.add_row(progress)
            grid.add_row(device_table(job))
            live.update(grid)
            staged = rolling.get("state") if (rolling := job.get("rollout")) else None
            if job["state"] in SETTLED or staged in rollout.STOPPED:
                return job
            if time.monotonic() > deadline:
                return job
            time.sleep(0.5)


def _env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise fail(f"--env {pair!r}: expected NAME=value")
        env[key] = value
    return env


@app.command("create")
def create(
    application: str = typer.Argument(..., help="application name or id"),
    version: str = typer.Option(None, "--version", "-v", help="default: latest"),
    device: list[str] = typer.Option(
        [], "--device", "-d", help="target device id or name (repeat)"
    ),
    selector: str = typer.Option(
        None, "--selector", "-l", help="target label selector, e.g. site=a"
    ),
    env: list[str] = typer.Option([], "--env", "-e", help="NAME=value for the job (repeat)"),
    start: str = typer.Option(None, "--start", help="ISO time before which nothing runs"),
    end: str = typer.Option(None, "--end", help="ISO time when the workloads are removed"),
    name: str = typer.Option("", "--name"),
    wait: bool = typer.Option(False, "--wait", "-w", help="watch the rollout until it settles"),
    timeout: float = typer.Option(600, "--timeout", help="seconds --wait waits"),
    max_parallel: int = typer.Option(
        None, "--max-parallel", help="stage version changes: devices per batch"
    ),
    canaries: int = typer.Option(None, "--canaries", help="size of a rollout's first batch"),
    min_healthy_time: float = typer.Option(
        None, "--min-healthy-time", help="seconds a batch runs healthy before the next"
    ),
    failure_threshold: float = typer.Option(
        None, "--failure-threshold", help="failed devices that stop a rollout (below 1: a fraction)"
    ),
    auto_revert: bool = typer.Option(
        None, "--auto-revert/--no-auto-revert", help="revert a failed rollout instead of pausing"
    ),
    lock_timeout: float = typer.Option(
        None, "--lock-timeout", help="seconds an upgrade waits for a held update lock"
    ),
    cron: str = typer.Option(
        None, "--schedule", help="periodic: run the one-shot services at these cron times"
    ),
    timezone: str = typer.Option(None, "--timezone", help="of --schedule (default UTC)"),
    overlap: str = typer.Option(None, "--overlap", help="skip (default) or queue"),
    output: Format = OutputOption,
) -> None:
    """Deploy an application to devices (by id or by label selector)."""
    periodic = schedule.body(cron, timezone, overlap)
    if bool(device) == bool(selector):
        raise fail("give --device (repeatable) or --selector, not both")
    if selector:
        try:
            parse_assignments([s for s in selector.split(",") if "=" in s and "!=" not in s])
        except LabelError as exc:
            raise fail(str(exc)) from exc
    with config.client() as client:
        job = client.create_job(
            application,
            version=version,
            devices=list(device) or None,
            selector=selector,
            environment=_env(env),
            start=start,
            end=end,
            name=name,
            rollout=rollout.settings(
                max_parallel,
                canaries,
                min_healthy_time,
                failure_threshold,
                auto_revert,
                lock_timeout,
            ),
            schedule=periodic,
        )
        if wait:
            job = watch(client, job["id"], timeout)
    if output == Format.json:
        show_item(job, output)
    else:
        typer.echo(f"job {job['id']}: {job['application']} {job['version']} is {job['state']}")
    if wait and job["state"] not in ("running", "completed"):
        raise typer.Exit(1)


@app.command("list")
def list_jobs(
    application: str = typer.Option(None, "--application", "-a"),
    state: str = typer.Option(None, "--state", help="comma-separated states"),
    output: Format = OutputOption,
) -> None:
    """List jobs."""
    with config.client() as client:
        items = client.jobs(application=application, state=state, devices="false")
    show_list(items, COLUMNS, output)


@app.command("show")
def show(job: str, output: Format = OutputOption) -> None:
    """Show a job and how it stands on each device."""
    with config.client() as client:
        item = client.job(job)
    if output == Format.json:
        show_item(item, output)
        return
    show_item(
        item,
        output,
        [
            ("id", lambda j: j["id"]),
            ("application", lambda j: f"{j['application']} {j['version']}"),
            ("state", lambda j: j["state"]),
            ("error", lambda j: j.get("error")),
            ("target", lambda j: j.get("selector") or ", ".join(j.get("targets") or [])),
            ("window", lambda j: f"{j.get('start') or 'now'} → {j.get('end') or 'no end'}"),
            ("services", lambda j: ", ".join(j["services"])),
        ],
    )
    from edgefleet.cli.output import console

    console.print(device_table(item))
    rollout.print_rollout(item)
    schedule.print_schedule(item)
    if item.get("devices_next"):
        total = sum(item.get("device_counts", {}).values())
        console.print(
            f"[dim]… the first {len(item['devices'])} of {total} devices; "
            f"all of them: edgefleet jobs devices {item['id']}[/dim]"
        )


@app.command("devices")
def devices(
    job: str,
    state: str = typer.Option(None, "--state", help="comma-separated device states"),
    output: Format = OutputOption,
) -> None:
    """Every device of a job and how the job stands there."""
    with config.client() as client:
        items = list(client.job_devices(job, state=state))
    if output != Format.table:
        show_list(items, [], output)
        return
    from edgefleet.cli.output import console

    console.print(device_table({"devices": items}))


@app.command("upgrade")
def upgrade(
    job: str,
    version: str = typer.Option(..., "--version", "-v"),
    wait: bool = typer.Option(False, "--wait", "-w"),
    timeout: float = typer.Option(600, "--timeout"),
    output: Format = OutputOption,
) -> None:
    """Roll a job to another version (the old keeps running until the new is up)."""
    with config.client() as client:
        item = client.update_job(job, version=version)
        if wait:
            item = watch(client, job, timeout)
    if output == Format.json:
        show_item(item, output)
    else:
        typer.echo(f"job {item['id']} → version {item['version']}: {item['state']}")
        staged = item.get("rollout")
        if staged and staged["state"] in ("rolling", "paused"):
            typer.echo(rollout.summary(staged))


@app.command("cancel")
def cancel(job: str, output: Format = OutputOption) -> None:
    """Cancel a job: its workloads are removed from every device."""
    with config.client() as client:
        item = client.cancel_job(job)
    if output == Format.json:
        show_item(item, output)
    else:
        typer.echo(f"job {item['id']} is {item['state']}")


@app.command("rm")
def remove(job: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Cancel and delete a job."""
    if not yes:
        typer.confirm(f"Delete job {job}? Its workloads are removed from every device", abort=True)
    with config.client() as client:
        client.delete_job(job)
    typer.echo(f"deleted {job}")
