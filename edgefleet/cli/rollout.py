"""``edgefleet jobs rollout``: watch and steer a job's staged rollout."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from edgefleet.cli import config
from edgefleet.cli.output import Format, Item, OutputOption, fail, show_item

STOPPED = ("paused", "reverted", "aborted")  # a staged rollout waiting for people

app = typer.Typer(
    help="A job's staged rollout: progress, pause, resume, abort.", no_args_is_help=True
)


def settings(
    max_parallel: int | None,
    canaries: int | None,
    min_healthy_time: float | None,
    failure_threshold: float | None,
    auto_revert: bool | None,
    lock_timeout: float | None,
) -> dict[str, Any] | None:
    """The ``rollout`` block from command-line flags (None: none given)."""
    given = {
        "max_parallel": max_parallel,
        "canaries": canaries,
        "min_healthy_time": min_healthy_time,
        "failure_threshold": failure_threshold,
        "auto_revert": auto_revert,
        "lock_timeout": lock_timeout,
    }
    body = {k: v for k, v in given.items() if v is not None}
    return body or None


def progress_table(rollout: Item) -> Table:
    """One row per batch: its state and its devices (with what each runs)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for title in ("BATCH", "STATE", "DEVICES"):
        table.add_column(title)
    for batch in rollout.get("batches", []):
        devices = ", ".join(
            f"{d.get('name') or d['device']}:{d['state']}"
            + (f"({d['version']})" if d.get("version") else "")
            for d in batch["devices"]
        )
        table.add_row(str(batch["index"]), batch["state"], devices)
    return table


def summary(rollout: Item) -> str:
    text = f"rollout {rollout['state']}"
    if rollout.get("kind") == "configuration":  # a secret or variable changed, not the version
        text += " of a configuration change"
        if rollout.get("changes"):
            text += " (" + "; ".join(rollout["changes"]) + ")"
    elif rollout.get("from_version") or rollout.get("to_version"):
        text += f" {rollout.get('from_version')} → {rollout.get('to_version')}"
    if rollout.get("batch_count"):
        text += f", batch {rollout.get('batch')} of {rollout['batch_count']}"
    if rollout.get("failures"):
        text += f", {len(rollout['failures'])} failed"
    if rollout.get("reason"):
        text += f" ({rollout['reason']})"
    if rollout.get("holding_previous_configuration"):
        text += "; the job stays on the previous secrets/variables until its next change"
    return text


def print_rollout(job: Item) -> None:
    rollout = job.get("rollout")
    if not rollout:
        return
    from edgefleet.cli.output import console

    console.print(summary(rollout), highlight=False)
    if rollout.get("batches"):
        console.print(progress_table(rollout))


def _act(job: str, action: str, output: Format) -> None:
    with config.client() as client:
        item = client.rollout(job, action)
    if output == Format.json:
        show_item(item, output)
        return
    typer.echo(f"job {item['id']}: {summary(item.get('rollout') or {'state': 'none'})}")


@app.command("show")
def show(job: str, output: Format = OutputOption) -> None:
    """The rollout's settings and progress, batch by batch."""
    with config.client() as client:
        item = client.job(job, devices=False)
    if output == Format.json:
        show_item(item.get("rollout") or {}, output)
        return
    if not item.get("rollout"):
        typer.echo(f"job {item['id']} has no rollout settings (versions change everywhere at once)")
        return
    print_rollout(item)


@app.command("pause")
def pause(job: str, output: Format = OutputOption) -> None:
    """Stop moving further batches; devices already moved stay where they are."""
    _act(job, "pause", output)


@app.command("resume")
def resume(job: str, output: Format = OutputOption) -> None:
    """Go on with the next batch (failures counted so far are forgiven)."""
    _act(job, "resume", output)


@app.command("abort")
def abort(job: str, output: Format = OutputOption) -> None:
    """End the rollout: moved devices and the job go back to the previous version."""
    _act(job, "abort", output)


@app.command("override-locks")
def override_locks(job: str, output: Format = OutputOption) -> None:
    """Upgrades and restarts of the job stop waiting for update locks held now."""
    _act(job, "override-locks", output)


@app.command("set")
def set_settings(
    job: str,
    max_parallel: int = typer.Option(None, "--max-parallel", help="devices per batch"),
    canaries: int = typer.Option(None, "--canaries", help="size of the first batch"),
    min_healthy_time: float = typer.Option(
        None, "--min-healthy-time", help="seconds a batch runs healthy before the next"
    ),
    failure_threshold: float = typer.Option(
        None, "--failure-threshold", help="failed devices that stop it (below 1: a fraction)"
    ),
    auto_revert: bool = typer.Option(
        None, "--auto-revert/--no-auto-revert", help="revert instead of pausing"
    ),
    lock_timeout: float = typer.Option(
        None, "--lock-timeout", help="seconds an upgrade waits for a held update lock"
    ),
    healthy_deadline: float = typer.Option(
        None, "--healthy-deadline", help="seconds a moved device has to become healthy"
    ),
    output: Format = OutputOption,
) -> None:
    """Give a job rollout settings (or change them); unset ones keep their defaults."""
    body = settings(
        max_parallel, canaries, min_healthy_time, failure_threshold, auto_revert, lock_timeout
    )
    if healthy_deadline is not None:
        body = {**(body or {}), "healthy_deadline": healthy_deadline}
    if body is None:
        raise fail("give at least one setting, e.g. --max-parallel 2")
    with config.client() as client:
        current: Item = client.job(job, devices=False).get("rollout") or {}
        keep = {k: current[k] for k in RolloutKeys if k in current}
        item = client.update_job(job, rollout={**keep, **body})
    if output == Format.json:
        show_item(item, output)
        return
    typer.echo(f"job {item['id']}: {summary(item.get('rollout') or {'state': 'none'})}")


RolloutKeys = (
    "max_parallel",
    "canaries",
    "min_healthy_time",
    "failure_threshold",
    "auto_revert",
    "healthy_deadline",
    "lock_timeout",
)
