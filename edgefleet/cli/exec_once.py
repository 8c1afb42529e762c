"""``edgefleet exec`` without a terminal: one request, its output, its exit code.

Scripts call ``edgefleet exec DEVICE -- CMD`` in loops, so the whole process
must be quick (issue 16: 200 ms, start-up included). Typer and the verbs'
table cost ~60 ms of CPU before the request is even built, which is a third of
that budget. So :func:`plain_args` recognises the one shape that needs none of
Typer's parsing, exactly ``exec TARGET -- COMMAND...`` (no option anywhere
before the ``--``), and :mod:`edgefleet.cli` runs it here directly. Every
other shape (options, ``--help``, a missing command, ``-it``) goes through
Typer as before, so its help and its error messages stay Typer's own; the
Typer verb calls :func:`exec_once` too, so both paths print and exit alike.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from edgefleet.cli import config
from edgefleet.client.errors import ClientError

DEFAULT_TIMEOUT = 30.0  # seconds; the default of ``exec --timeout``


def plain_args(args: list[str]) -> tuple[str, list[str]] | None:
    """``(target, command)`` when ``args`` (``sys.argv[1:]``) are exactly
    ``exec TARGET -- COMMAND...``, where Typer would bind nothing but those two
    with every option at its default; else None."""
    if len(args) < 4 or args[0] != "exec" or args[2] != "--":
        return None
    if args[1].startswith("-") or "_EDGEFLEET_COMPLETE" in os.environ:
        return None  # an option, or shell completion asking: Typer's to answer
    return args[1], args[3:]


def exec_once(
    target: str,
    argv: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    device: str | None = None,
    service: str | None = None,
) -> int:
    """Run ``argv`` on device ``target`` (or, with ``device`` and ``service``,
    in that service of job ``target``), print its output, return its exit code.
    Raises :class:`ClientError` as the client does."""
    with config.client() as client:
        if device is not None and service is not None:
            result = client.workload_exec(target, device, service, argv, timeout=timeout)
        else:
            result = client.exec(target, argv, timeout=timeout)
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    if result.get("truncated") or result.get("timed_out"):
        from edgefleet.cli import output  # Rich: only when there is something to flag

        if result.get("truncated"):
            output.err_console.print("[yellow]output truncated[/yellow]")
        if result.get("timed_out"):
            output.err_console.print(f"[red]timed out after {timeout:g} s[/red]")
    return int(result["exit_code"])


def run_plain(target: str, argv: list[str]) -> NoReturn:
    """The fast path's whole process: exit as the Typer verb would (the
    command's code; 1 after a client error, printed the same way, or on a
    closed pipe; 130 on Ctrl-C)."""
    try:
        code = exec_once(target, argv)
    except ClientError as exc:
        from edgefleet.cli.output import fail  # what cli.main prints for a ClientError

        fail(exc.message)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # Click's answer to a reader that went away: exit 1, say nothing (and
        # make the flush at exit harmless: the recipe of Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(code)
