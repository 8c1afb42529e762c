"""``edgefleet agent datasets``: what this device offers to federated computations.

Run on the device by its owner, against the agent's state dir (the agent may
be running: it notices the change within a few seconds). Nothing here talks
to the server; the agent reports the schema and an approximate size, never a
value, and enforces the policy on every computation it is invited to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from edgefleet.agent.datasets import registry
from edgefleet.agent.datasets.registry import DatasetSpec, RegistryError
from edgefleet.agent.datasets.sources import DatasetError, open_source
from edgefleet.agent.datasets.sources import stream as stream_source
from edgefleet.agent.datasets.sources.base import approximate
from edgefleet.agent.settings import default_state_dir
from edgefleet.cli import output
from edgefleet.cli.choices import Op
from edgefleet.cli.output import Format, OutputOption, fail, show_list

app = typer.Typer(
    help="Datasets this device offers to federated computations (aggregates only).",
    no_args_is_help=True,
)

StateDir = typer.Option(
    None, "--state-dir", help="the agent's state dir [env: EDGEFLEET_STATE_DIR]"
)


def _state_dir(ctx: typer.Context, value: Path | None) -> Path:
    """--state-dir here, else given to ``agent`` itself, else the environment, else the default."""
    if value is not None:
        return value
    context: Any = ctx
    while context is not None:
        given = context.params.get("state_dir")
        if given:
            return Path(given)
        context = context.parent
    env = os.environ.get("EDGEFLEET_STATE_DIR")
    return Path(env) if env else default_state_dir()


def _describe(spec: DatasetSpec) -> dict[str, Any]:
    try:
        description = open_source(spec).describe()
    except DatasetError as exc:
        return {"error": str(exc)}
    return {
        "columns": [c.model_dump() for c in description.columns],
        "rows_approx": approximate(description.rows),
    }


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="dataset name analysts will use"),
    file: str = typer.Argument(
        ..., help="CSV, JSON lines, Parquet or SQLite file, or stream:NAME (collected data)"
    ),
    state_dir: Path = StateDir,
    min_parties: int = typer.Option(
        registry.DEFAULT_MIN_PARTIES,
        "--min-parties",
        min=2,
        help="an aggregate must cover at least this many devices",
    ),
    allow_project: list[str] = typer.Option(
        [], "--allow-project", help="project (name or id) that may compute (repeat; default: own)"
    ),
    allow_op: list[Op] = typer.Option(
        [], "--allow-op", help="allowed operation (repeat; default: all)"
    ),
    fmt: str = typer.Option(
        None, "--format", help="csv, jsonl, parquet or sqlite (default: extension)"
    ),
    table: str = typer.Option(None, "--table", help="SQLite: the table to offer"),
    query: str = typer.Option(None, "--query", help="SQLite: a SELECT to offer (read-only)"),
    query_budget: str = typer.Option(
        None, "--query-budget", help="at most N computations per window: N/WINDOW, e.g. 10/1d"
    ),
    min_difference: int = typer.Option(
        None,
        "--min-difference",
        min=1,
        help="refuse a party set differing from an answered one by fewer (default: min-parties)",
    ),
    dp_epsilon: float = typer.Option(
        None, "--dp-epsilon", help="answer only with differential privacy, epsilon budget in total"
    ),
    dp_delta: float = typer.Option(None, "--dp-delta", help="delta budget in total (default 0)"),
    retain: int = typer.Option(
        1_000_000, "--retain", min=1, help="stream: records kept for computations (oldest dropped)"
    ),
    copy: bool = typer.Option(False, "--copy", help="keep a copy in the state dir"),
    replace: bool = typer.Option(False, "--replace", help="redeclare an existing dataset"),
) -> None:
    """Declare a dataset on this device, with the policy computations must meet."""
    directory = _state_dir(ctx, state_dir)
    try:
        budget, window = registry.parse_budget(query_budget) if query_budget else (None, 86_400.0)
        privacy = registry.Privacy(
            query_budget=budget,
            budget_window=window,
            min_difference=min_difference,
            dp_epsilon=dp_epsilon,
            dp_delta=dp_delta,
        )
    except ValidationError as exc:
        raise fail(
            f"privacy policy: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
        ) from exc
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    try:
        spec = registry.new_spec(
            name,
            file,
            fmt=fmt,
            min_parties=min_parties,
            allow_projects=allow_project,
            allow_ops=[op.value for op in allow_op],
            table=table,
            query=query,
            privacy=privacy,
            retain_rows=retain,
        )
        if spec.source == "stream":
            buffer = directory.resolve() / stream_source.BUFFER
            spec = spec.model_copy(update={"path": str(buffer)})
            stream_source.retain(buffer, spec.name, spec.stream or "", spec.retain_rows)
        described = _describe(spec)
        if "error" in described and spec.source != "stream":
            raise fail(f"{file}: {described['error']}")
        if copy:
            spec = registry.copy_into(directory, spec)
        registry.save(directory, spec, replace=replace)
    except (RegistryError, DatasetError) as exc:
        raise fail(str(exc)) from exc
    if "error" in described:
        output.err_console.print(f"[yellow]warning:[/yellow] {described['error']}", highlight=False)
    columns = ", ".join(f"{c['name']}:{c['type']}" for c in described.get("columns", []))
    output.console.print(
        f"declared dataset {name} ({spec.source}; {columns or 'no columns yet'}; "
        f"~{described.get('rows_approx', 0)} rows) in {directory}",
        highlight=False,
    )


@app.command("list")
def list_datasets(
    ctx: typer.Context, state_dir: Path = StateDir, output: Format = OutputOption
) -> None:
    """The datasets declared on this device, their schema and policy."""
    try:
        declared = registry.load(_state_dir(ctx, state_dir)).datasets
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    items = [spec.model_dump() | _describe(spec) for spec in declared.values()]
    columns = [
        ("NAME", lambda d: d["name"]),
        ("SOURCE", lambda d: d["source"]),
        ("FILE", lambda d: d.get("path") or f"stream:{d.get('stream')}"),
        ("COLUMNS", lambda d: ", ".join(f"{c['name']}:{c['type']}" for c in d.get("columns", []))),
        ("ROWS", lambda d: f"~{d.get('rows_approx', 0)}"),
        ("MIN", lambda d: d["min_parties"]),
        ("PROJECTS", lambda d: ",".join(d["allow_projects"]) or "(own)"),
        ("OPS", lambda d: ",".join(d["allow_ops"]) or "all"),
        ("PRIVACY", lambda d: _privacy(d["privacy"])),
        ("ERROR", lambda d: d.get("error")),
    ]
    show_list(items, columns, output)


@app.command("rm")
def remove(ctx: typer.Context, name: str, state_dir: Path = StateDir) -> None:
    """Withdraw a dataset: the agent declines every computation on it from now on."""
    directory = _state_dir(ctx, state_dir)
    try:
        spec = registry.remove(directory, name)
        if spec.source == "stream" and spec.path:
            stream_source.forget(Path(spec.path), name)
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    output.console.print(f"removed dataset {name}")


def _privacy(privacy: dict[str, Any]) -> str:
    parts = []
    if privacy.get("query_budget"):
        parts.append(f"{privacy['query_budget']} per {privacy['budget_window']:g} s")
    if privacy.get("min_difference"):
        parts.append(f"differ by >= {privacy['min_difference']}")
    if privacy.get("dp_epsilon") is not None:
        parts.append(f"epsilon {privacy['dp_epsilon']:g}")
    return ", ".join(parts) or "-"
