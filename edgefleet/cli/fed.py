"""``edgefleet fed``: secure aggregates over datasets that stay on the devices."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from edgefleet.cli import config
from edgefleet.cli.choices import Op
from edgefleet.cli.output import Format, OutputOption, console, fail, print_json, show_list

app = typer.Typer(
    help="Federated computations: aggregates over devices' datasets; raw data never leaves.",
    no_args_is_help=True,
)


def _bins(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(edge) for edge in text.split(",") if edge.strip()]
    except ValueError:
        raise fail(f"--bins {text!r}: expected comma-separated numbers, e.g. 0,10,20,50") from None


def _names(computation: dict[str, Any], devices: list[str]) -> str:
    parties = {p["device"]: p["name"] for p in computation.get("parties", [])}
    return ", ".join(parties.get(d, d) for d in devices) or "-"


def show(computation: dict[str, Any]) -> None:
    """The computation for people: the released value, who is in it, who is not and why."""
    state = computation["state"]
    what = f"{computation['op']} of {computation['dataset']}.{computation['column']}"
    console.print(f"computation {computation['id']}: {what} ({state})", highlight=False)
    result = computation.get("result")
    if result is not None:
        if result.get("counts") is not None:
            table = Table(box=None, header_style="bold", pad_edge=False)
            for title in ("BIN", "COUNT"):
                table.add_column(title)
            edges, counts = result["edges"], result["counts"]
            for i, count in enumerate(counts):
                close = "]" if i == len(counts) - 1 else ")"
                table.add_row(escape(f"[{edges[i]:g}, {edges[i + 1]:g}{close}"), str(count))
            console.print(table)
        else:
            value = result.get("value")
            console.print(f"result: {'undefined' if value is None else repr(value)}")
        console.print(f"rows: {result.get('n')}")
    console.print(
        f"participants ({len(computation['participants'])}): "
        f"{_names(computation, computation['participants'])}",
        highlight=False,
    )
    console.print(
        f"dropped ({len(computation['dropped'])}): {_names(computation, computation['dropped'])}",
        highlight=False,
    )
    for party in computation.get("parties", []):
        if party.get("reason"):
            where = f" in round {party['round']}" if party.get("round") else ""
            line = f"  {party['name']}: {party['status']}{where}: {party['reason']}"
            console.print(escape(line), highlight=False)
    if computation.get("error"):
        console.print(f"[red]error:[/red] {escape(computation['error'])}", highlight=False)


@app.command("run")
def run(
    dataset: str = typer.Option(..., "--dataset", help="dataset name, as declared on devices"),
    op: Op = typer.Option(..., "--op", help="count, sum, mean, variance or histogram"),
    column: str = typer.Option(..., "--column", "-c", help="numeric column of the dataset"),
    device: list[str] = typer.Option([], "--device", help="device id or name (repeat)"),
    selector: str = typer.Option(None, "--selector", "-l", help="label selector, e.g. site=a"),
    bins: str = typer.Option(None, "--bins", help="histogram edges, e.g. 0,10,20,50"),
    project: str = typer.Option(None, "--project", "-p", help="default: the devices' project"),
    round_timeout: float = typer.Option(
        None, "--round-timeout", help="seconds a round waits for devices (default 30)"
    ),
    wait: bool = typer.Option(False, "--wait", help="wait for the result and print it"),
    timeout: float = typer.Option(600, "--timeout", help="with --wait: give up after seconds"),
    output: Format = OutputOption,
) -> None:
    """Compute a secure aggregate over devices: no device's value reaches the server."""
    if bool(device) == (selector is not None):
        raise fail("give --device (repeat) or --selector ('' for every device), not both")
    with config.client() as client:
        computation = client.compute(
            dataset,
            op.value,
            column,
            devices=list(device) or None,
            selector=selector,
            bins=_bins(bins),
            project=project,
            round_timeout=round_timeout,
            wait=wait,
            timeout=timeout,
        )
    if output == Format.json:
        print_json(computation)
    elif wait:
        show(computation)
    else:
        console.print(
            f"computation {computation['id']} {computation['state']}; "
            f"see: edgefleet fed show {computation['id']}",
            highlight=False,
        )
    if computation["state"] == "failed":
        raise typer.Exit(1)


@app.command("show")
def show_command(computation_id: str, output: Format = OutputOption) -> None:
    """One computation: state, released result, participants, dropped devices and why."""
    with config.client() as client:
        computation = client.computation(computation_id)
    if output == Format.json:
        print_json(computation)
    else:
        show(computation)


@app.command("list")
def list_command(
    project: str = typer.Option(None, "--project", "-p"),
    dataset: str = typer.Option(None, "--dataset"),
    state: str = typer.Option(None, "--state", help="running, done, failed, refused (comma)"),
    output: Format = OutputOption,
) -> None:
    """Computations of your projects, refused ones included (the audit)."""
    with config.client() as client:
        items = client.computations(project=project, dataset=dataset, state=state)
    columns = [
        ("ID", lambda c: c["id"]),
        ("OP", lambda c: f"{c['op']}({c['dataset']}.{c['column']})"),
        ("STATE", lambda c: c["state"]),
        ("BY", lambda c: c["created_by"]),
        ("DEVICES", lambda c: f"{len(c['participants'])}/{len(c['parties']) or '-'}"),
        ("ERROR", lambda c: c.get("error")),
    ]
    show_list(items, columns, output)


@app.command("datasets")
def datasets(
    project: str = typer.Option(None, "--project", "-p"),
    dataset: str = typer.Option(None, "--dataset"),
    device: str = typer.Option(None, "--device"),
    output: Format = OutputOption,
) -> None:
    """Datasets declared on devices: columns, approximate size, policy. No values."""
    with config.client() as client:
        items = client.datasets(project=project, dataset=dataset, device=device)
    columns = [
        ("DATASET", lambda d: d["dataset"]),
        ("DEVICE", lambda d: d["device_name"]),
        ("ONLINE", lambda d: d["is_online"]),
        ("COLUMNS", lambda d: ", ".join(f"{c['name']}:{c['type']}" for c in d["columns"])),
        ("ROWS", lambda d: f"~{d['rows_approx']}"),
        ("MIN", lambda d: d["min_parties"]),
        ("PROJECTS", lambda d: ",".join(d["allow_projects"]) or "(own)"),
        ("OPS", lambda d: ",".join(d["allow_ops"]) or "all"),
        ("ERROR", lambda d: d.get("error")),
    ]
    show_list(items, columns, output)
