"""Verbs registered by name, loaded when used.

Every scripted call pays the CLI's start-up (issue 16: ``edgefleet exec DEVICE
-- true`` must finish in 200 ms), and most of that start-up was importing what
*other* verbs need: the settings classes of ``server``/``agent`` (pydantic,
the wire messages), httpx for ``--version``, Rich for commands that print
nothing. Here the root group knows only each verb's name and the function that
registers it; the verb's module is imported the first time the verb is looked
up (to run it, or to show help, which loads them all so that ``--help`` reads
exactly as before).

A loader registers its verbs on a scratch :class:`typer.Typer` configured like
the root, so each verb is built by Typer the same way an eager
``app.add_typer``/``app.command`` would build it; its plain parameters then get
the pydantic-free converter of :mod:`edgefleet.cli.coercion`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import typer
from typer._click import Command
from typer.core import TyperGroup

from edgefleet.cli.coercion import help_option_of, speed_up, speed_up_params

Loader = Callable[[typer.Typer], None]


class Verbs(MutableMapping[str, Command]):
    """The root group's ``commands``: names come from the loader table (in its
    order), a command is built on first access."""

    def __init__(self, loaders: dict[str, Loader], eager: dict[str, Command]) -> None:
        self._loaders = loaders
        self._loaded = dict(eager)

    def _load(self, name: str) -> None:
        scratch = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        scratch.callback()(_no_op)  # a callback makes Typer build a group, never a lone command
        self._loaders[name](scratch)
        for verb, command in typer.main.get_group(scratch).commands.items():
            speed_up(command)
            self._loaded.setdefault(verb, command)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded and name in self._loaders:
            self._load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]
        self._loaders.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._loaders
        yield from (name for name in self._loaded if name not in self._loaders)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return name in self._loaders or name in self._loaded


def _no_op() -> None:
    """Scratch group callback (never invoked: only its commands are kept)."""


def lazy_group(loaders: dict[str, Loader]) -> type[TyperGroup]:
    """A :class:`TyperGroup` class whose commands are ``loaders`` (name -> the
    function that registers that verb), for ``typer.Typer(cls=...)``."""

    class LazyGroup(TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.commands = Verbs(dict(loaders), dict(self.commands))
            speed_up_params([*self.params, *help_option_of(self)])

        def list_commands(self, ctx: Any) -> list[str]:
            return list(self.commands)  # names only; TyperGroup's would build every verb

    return LazyGroup
