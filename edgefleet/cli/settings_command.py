"""Register a Typer command whose flags are the fields of a settings class.

One source of truth: a field ``heartbeat_interval: float`` with a
description becomes ``--heartbeat-interval FLOAT`` with that help, lists
become repeatable flags, booleans ``--x/--no-x``, literals choices. A flag
left out stays unset (``None``), so ``EDGEFLEET_*`` environment variables
still apply. The command's signature is built at run time and handed to
Typer, which reads ``__signature__`` like any other function's.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer
from pydantic import BaseModel, ValidationError


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, is_list) with Optional and Annotated removed."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0])
    if origin is list:
        inner, _ = _unwrap(typing.get_args(annotation)[0])
        return inner, True
    return annotation, False


def _choice_enum(name: str, values: tuple[Any, ...]) -> type[enum.Enum]:
    return enum.Enum(name, {str(v): str(v) for v in values}, type=str)  # type: ignore[return-value]


def parameters(model: type[BaseModel], exclude: set[str] | None = None) -> list[inspect.Parameter]:
    params = []
    for name, field in model.model_fields.items():
        if exclude and name in exclude:
            continue
        flag = "--" + name.replace("_", "-")
        inner, is_list = _unwrap(field.annotation)
        help_text = f"{field.description or ''} [env: EDGEFLEET_{name.upper()}]".strip()
        if inner is bool:
            option = typer.Option(f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False)
            annotation: Any = Optional[bool]  # noqa: UP045 (Typer reads these at run time)
        else:
            kind: Any = inner
            if typing.get_origin(inner) is Literal:
                kind = _choice_enum(name.title(), typing.get_args(inner))
            elif inner not in (int, float, str, Path):
                kind = str
            annotation = Optional[list[kind]] if is_list else Optional[kind]  # noqa: UP045
            option = typer.Option(flag, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[annotation, option],
            )
        )
    return params


def given(values: dict[str, Any]) -> dict[str, Any]:
    """Only the flags the user actually passed, with choice enums as plain strings."""
    result = {}
    for key, value in values.items():
        if value is None or value == [] or value == ():
            continue
        result[key] = value.value if isinstance(value, enum.Enum) else value
    return result


def settings_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        flag = f"--{where.replace('_', '-')}"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(message if message.startswith(flag) else f"{flag}: {message}")
    return "; ".join(parts)


def register(
    app: typer.Typer,
    name: str,
    model: type[BaseModel],
    run: Callable[..., Any],
    *,
    help: str,
    exclude: set[str] | None = None,
    extra: list[inspect.Parameter] | None = None,
) -> None:
    def command(**values: Any) -> Any:
        return run(**values)

    command.__signature__ = inspect.Signature([*parameters(model, exclude), *(extra or [])])  # type: ignore[attr-defined]
    command.__doc__ = help
    app.command(name, help=help)(command)


def register_group(
    app: typer.Typer,
    name: str,
    model: type[BaseModel],
    run: Callable[..., Any],
    *,
    help: str,
    commands: list[tuple[typer.Typer, str | None]],  # None: its verbs join the group
) -> None:
    """Like :func:`register`, for a process verb that also has sub-commands
    (``edgefleet agent datasets ...``): the flags belong to the verb itself, which
    runs the process only when no sub-command is given."""
    group = typer.Typer(help=help, invoke_without_command=True, no_args_is_help=False)

    def callback(ctx: typer.Context, **values: Any) -> Any:
        if ctx.invoked_subcommand is None:
            return run(**values)
        return None

    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    callback.__signature__ = inspect.Signature([context, *parameters(model)])  # type: ignore[attr-defined]
    callback.__doc__ = help
    group.callback()(callback)
    for sub, sub_name in commands:
        group.add_typer(sub, name=sub_name)
    app.add_typer(group, name=name)
