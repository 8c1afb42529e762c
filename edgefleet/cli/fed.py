"""``edgefleet fed``: secure aggregates over datasets that stay on the devices."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from edgefleet.cli import config
from edgefleet.cli.choices import Op
from edgefleet.cli.output import Format, Item, OutputOption, console, fail, print_json, show_list
from edgefleet.fed.analytics.query import parse_condition, scalar

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


def _where(texts: list[str]) -> list[dict[str, Any]]:
    """``COL>=5``, ``site==a``, ``site in a,b``, ``site not_in c``: one condition each."""
    try:
        return [parse_condition(text) for text in texts]
    except ValueError as exc:
        raise fail(f"--where {exc}") from None


def _bounds(texts: list[str]) -> dict[str, list[float]]:
    out = {}
    for text in texts:
        column, _, span = text.partition("=")
        lo, _, hi = span.partition(":")
        try:
            out[column.strip()] = [float(lo), float(hi)]
        except ValueError:
            raise fail(f"--bound {text!r}: expected COLUMN=LO:HI, e.g. temp=-40:60") from None
    return out


def _list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _floats(text: str | None, flag: str) -> list[float]:
    try:
        return [float(part) for part in _list(text)]
    except ValueError:
        raise fail(f"{flag} {text!r}: expected comma-separated numbers") from None


def _names(computation: Item, devices: list[str]) -> str:
    parties = {p["device"]: p["name"] for p in computation.get("parties", [])}
    return ", ".join(parties.get(d, d) for d in devices) or "-"


def show(computation: Item) -> None:
    """The computation for people: the released value, who is in it, who is not and why."""
    state = computation["state"]
    what = f"{computation['op']} of {computation['dataset']}.{computation['column']}"
    if computation.get("round"):
        state += f", round {computation['round']}"
    console.print(f"computation {computation['id']}: {what} ({state})", highlight=False)
    result = computation.get("result")
    if result is not None and _analytics(result):
        pass
    elif result is not None:
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
    if result is not None:
        spent = result.get("epsilon") or 0
        noise = f" (Laplace noise, scale {result['noise_scale']:g})" if spent else ""
        console.print(f"epsilon spent: {spent:g}{noise}", highlight=False)


def _analytics(result: dict[str, Any]) -> bool:
    """Print the shapes beyond one column; False if the result is a plain one."""
    rows: list[tuple[str, str]] = []
    if result.get("groups") is not None:
        for group in result["groups"]:
            shown = (
                "suppressed (too few devices)"
                if group["suppressed"]
                else (f"n={group['n']} value={group['value']!r}")
            )
            rows.append((f"group {group['group']} ({group['parties']} devices)", shown))
    elif result.get("columns"):
        rows = [(name, f"n={c['n']} value={c['value']!r}") for name, c in result["columns"].items()]
    elif result.get("covariance") is not None:
        names = list(result["means"])
        rows = [(f"mean {n}", repr(result["means"][n])) for n in names]
        rows += [
            (f"cov({a}, {b})", repr(result["covariance"][i][j]))
            for i, a in enumerate(names)
            for j, b in enumerate(names)
            if j >= i
        ]
    elif result.get("coefficients") is not None:
        rows = [("intercept", repr(result["intercept"]))]
        rows += [(f"coef {k}", repr(v)) for k, v in result["coefficients"].items()]
        rows += [
            ("r2", repr(result["r2"])),
            ("residual variance", repr(result["residual_variance"])),
        ]
    elif result.get("quantiles") is not None:
        rows = [(f"q{k}", repr(v)) for k, v in result["quantiles"].items()]
        rows.append(("resolution", f"±{result['resolution']:g} (widest bin)"))
    elif result.get("note"):
        rows = [("note", result["note"])]
    else:
        return False
    table = Table(box=None, header_style="bold", pad_edge=False, show_header=False)
    table.add_column()
    table.add_column()
    for key, value in rows:
        table.add_row(escape(key), escape(value))
    console.print(table)
    if result.get("n") is not None:
        console.print(f"rows: {result['n']}")
    return True


@app.command("run")
def run(
    dataset: str = typer.Option(..., "--dataset", help="dataset name, as declared on devices"),
    op: Op = typer.Option(
        ..., "--op", help="count, sum, mean, variance, histogram, quantile, covariance or ols"
    ),
    column: str = typer.Option(
        None, "--column", "-c", help="numeric column of the dataset (ols: the y column)"
    ),
    columns: str = typer.Option(
        None, "--columns", help="more columns, comma-separated (covariance; ols: the X columns)"
    ),
    where: list[str] = typer.Option(
        [], "--where", "-w", help="filter rows: temp>=20, site==a, site in a,b (repeat: AND)"
    ),
    group_by: str = typer.Option(None, "--group-by", help="a categorical column"),
    groups: str = typer.Option(None, "--groups", help="with --group-by: the groups, a,b,c"),
    quantiles: str = typer.Option(None, "--quantiles", help="quantile: e.g. 0.5,0.9"),
    epsilon: float = typer.Option(
        None, "--epsilon", help="differential privacy: noise added on the devices"
    ),
    bound: list[str] = typer.Option(
        [], "--bound", help="with --epsilon: clip COLUMN=LO:HI (repeat per column)"
    ),
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
            columns=_list(columns) or None,
            where=_where(where) or None,
            group_by=group_by,
            groups=[scalar(g) for g in _list(groups)] or None,
            quantiles=_floats(quantiles, "--quantiles") or None,
            epsilon=epsilon,
            bounds=_bounds(bound) or None,
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
        ("PRIVACY", lambda d: privacy_text(d.get("privacy") or {})),
        ("ERROR", lambda d: d.get("error")),
    ]
    show_list(items, columns, output)


def privacy_text(privacy: dict[str, Any]) -> str:
    """A dataset's privacy policy in one line: budget, differencing, epsilon."""
    parts = []
    if privacy.get("query_budget"):
        parts.append(f"{privacy['query_budget']}/{privacy.get('budget_window', 0):g}s")
    if privacy.get("min_difference"):
        parts.append(f"diff>={privacy['min_difference']}")
    if privacy.get("dp_epsilon") is not None:
        parts.append(f"eps {privacy.get('epsilon_spent', 0):g}/{privacy['dp_epsilon']:g}")
    return ", ".join(parts) or "-"
