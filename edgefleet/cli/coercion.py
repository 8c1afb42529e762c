"""Plain parameter values converted without pydantic.

Typer (0.2x) coerces every command-line value through a pydantic
``TypeAdapter``: importing pydantic and building one adapter per parameter was
~90 ms of a ~240 ms ``edgefleet exec DEVICE -- true`` (issue 16). Nearly all
edgefleet parameters are plain ``str``/``int``/``float``/``bool`` or lists of
strings, whose text converts the same way with Python's own constructors. This
module gives such parameters a converter that handles the unambiguous cases
(``"12"`` for an int, ``"2.5"`` for a float, any text for a str) and hands
everything else, every invalid value included, to Typer's own coercion, built
on first need: results and error messages stay Typer's.

It relies on two Typer internals (``_TyperParameter._runtime_param``, a lazily
built converter, and ``typer._coercion.RuntimeParam``); if a Typer release
drops them, :func:`speed_up` does nothing and the CLI is only slower
(tests/unit/cli/test_startup.py then fails on pydantic being imported).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from typer._click import Command
from typer._click.core import Parameter

try:
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # another Typer: keep its own coercion
    RuntimeParam = None  # type: ignore[assignment,misc]

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_MISSING = object()
_PLAIN = (str, int, float, bool)


def _plain(kind: type, value: Any) -> Any:
    """The value of ``kind`` for ``value`` when it is unambiguous, else _MISSING."""
    if kind is str and isinstance(value, str):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    if kind is float and isinstance(value, str) and _FLOAT.fullmatch(value):
        return float(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # an int default of a float option, as pydantic's lax mode
    if issubclass(kind, enum.Enum) and isinstance(value, str):
        for member in kind:
            if member.value == value:  # exact spelling only; Typer handles the rest
                return member
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    return _MISSING


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        """Converts plain values itself; anything else goes to Typer's converter."""

        kind: type = str
        many: bool = False
        _typer: list[Any] = field(default_factory=list)

        def _fallback(self, value: Any, param: Any, ctx: Any) -> Any:
            if not self._typer:
                self._typer.append(build_runtime_param(param.type_descriptor))
            return self._typer[0]._coerce_value(value, param=param, ctx=ctx)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.many:
                if isinstance(value, (list, tuple)):
                    items = [_plain(self.kind, item) for item in value]
                    if all(item is not _MISSING for item in items):
                        return items
                return self._fallback(value, param, ctx)
            result = _plain(self.kind, value)
            return self._fallback(value, param, ctx) if result is _MISSING else result


def _is_str_enum(annotation: Any) -> bool:
    return (
        isinstance(annotation, type)
        and issubclass(annotation, enum.Enum)
        and all(isinstance(member.value, str) for member in annotation)
    )


def _plain_kind(param: Parameter) -> tuple[type, bool] | None:
    """(kind, is_list) when ``param`` is a plain parameter this module can serve."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not hasattr(param, "_runtime_param"):
        return None
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or descriptor.file_annotation is not None:
        return None
    if getattr(info, "min", None) is not None or getattr(info, "max", None) is not None:
        return None
    annotation = descriptor.annotation
    if annotation in _PLAIN or _is_str_enum(annotation):
        return annotation, False
    if getattr(annotation, "__origin__", None) is list:
        (inner,) = getattr(annotation, "__args__", (None,))
        if inner in _PLAIN:
            return inner, True
    return None


def speed_up(command: Command) -> None:
    """Give ``command``'s plain parameters (and its sub-commands', recursively)
    the pydantic-free converter."""
    speed_up_params(command.params)
    speed_up_params(help_option_of(command))
    for sub in getattr(command, "commands", {}).values():
        speed_up(sub)


def help_option_of(command: Command) -> list[Parameter]:
    """[the command's --help option], created ahead of Click (see :func:`_help_option`)."""
    option = _help_option(command)
    return [] if option is None else [option]


def _help_option(command: Command) -> Parameter | None:
    """The command's ``--help`` option, made now as Click would make it on first
    parse (and cache in ``_help_option``), so it too gets the plain converter."""
    if not command.add_help_option or getattr(command, "_help_option", False) is not None:
        return None
    names = set(command.context_settings.get("help_option_names", ["--help"]))
    for param in command.params:
        names.difference_update(param.opts, param.secondary_opts)
    if not names:
        return None
    from typer._click.decorators import help_option

    help_option(list(names))(command)
    option = command.params.pop()
    command._help_option = option  # type: ignore[assignment]
    return option


def speed_up_params(params: Iterable[Parameter]) -> None:
    """:func:`speed_up` for these parameters only (the lazy root group's own)."""
    if RuntimeParam is None:
        return
    for param in params:
        kind = _plain_kind(param)
        if kind is not None and getattr(param, "_runtime_param", None) is None:
            descriptor = param.type_descriptor  # type: ignore[attr-defined]
            param._runtime_param = PlainParam(  # type: ignore[attr-defined]
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                kind=kind[0],
                many=kind[1],
            )
