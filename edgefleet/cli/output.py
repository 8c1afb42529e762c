"""Printing: Rich tables for people, ``--output json`` for scripts.

Rich is loaded on first use (``console``, ``err_console``, tables), so the
agent's own verbs, which import this module, stay small.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Any:
    if name in ("console", "err_console"):
        if name not in _consoles:
            from rich.console import Console

            _consoles[name] = Console(stderr=name == "err_console")
        return _consoles[name]
    raise AttributeError(name)


class Format(StrEnum):
    table = "table"
    json = "json"


OutputOption = typer.Option(Format.table, "--output", "-o", help="table or json")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def ago(value: str | None) -> str:
    if not value:
        return "never"
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    seconds = int((datetime.now(UTC) - then).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


Item = Mapping[str, Any]  # a JSON object: a plain dict or a client model (TypedDict)
Column = tuple[str, Callable[[Item], Any]]


def show_list(items: Sequence[Item], columns: Sequence[Column], fmt: Format) -> None:
    if fmt == Format.json:
        print_json(list(items))
        return
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for title, _ in columns:
        table.add_column(title)
    for item in items:
        table.add_row(*[_cell(get(item)) for _, get in columns])
    __getattr__("console").print(table)


def show_item(item: Item, fmt: Format, fields: Sequence[Column] | None = None) -> None:
    if fmt == Format.json or fields is None:
        print_json(item)
        return
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for title, get in fields:
        table.add_row(title, _cell(get(item)))
    __getattr__("console").print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def fail(message: str, code: int = 1) -> typer.Exit:
    __getattr__("err_console").print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)
