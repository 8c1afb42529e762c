"""The hand-off from the CLI's process to the agent's lean one (issue 18).

``edgefleet agent`` parses and validates its flags with the full CLI, then
:func:`exec_lean` replaces the process with the same command line and the
validated settings in :data:`SETTINGS_ENV`, which
:mod:`edgefleet.cli.agent_entry` reads back without Typer. Both sides name the
variable from here: a leaf module, so the verb (``cli/processes.py``) and the
lean entry, which registers that verb, do not import each other.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgefleet.agent.settings import AgentSettings

# The validated settings as JSON, for the lean process only (removed from its
# environment at once, so workloads and children never see it).
SETTINGS_ENV = "EDGEFLEET_AGENT_LEAN_SETTINGS"
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}
# The daemon runs without -OO, though it would keep ~1.5 MB less: pip installs
# only plain bytecode, so where the agent cannot write its site-packages (or
# PYTHONDONTWRITEBYTECODE is set) an -OO process compiled every module it
# imports from source, at each start and each first use (numpy with the first
# federated computation), and rounds timed out on a loaded machine.
# It runs with these -X options instead (a flag, not PYTHONNODEBUGRANGES, so
# workloads and children are untouched). no_debug_ranges: Python 3.11 keeps a
# column range for every instruction of every function it loads, used only to
# underline the failing expression in a traceback (``^^^^``); the interpreter
# drops them as it loads each code object, bytecode caches included, and the
# idle daemon holds ~0.25 MB less for as long as it runs (issue 18). Its
# tracebacks still name the file, line and function.
LEAN_XOPTIONS = ("no_debug_ranges",)


def lean_argv() -> list[str]:
    """The lean process's command line: this one's, with :data:`LEAN_XOPTIONS`
    not already given (a restart after enrolling or an upgrade re-uses it)."""
    flags: list[str] = []
    for name in LEAN_XOPTIONS:
        if name not in sys._xoptions:
            flags += ["-X", name]
    return [sys.executable, *flags, *sys.orig_argv[1:]]


def exec_lean(settings: AgentSettings) -> None:
    """Replace this process with a lean one running the agent with ``settings``
    (never returns). The command line is kept, so ``ps``, a restart and an
    over-the-air upgrade see the same arguments (and :data:`LEAN_XOPTIONS`)."""
    env = dict(os.environ)
    env[SETTINGS_ENV] = settings.model_dump_json()
    for name, value in MALLOC_ENV.items():
        env.setdefault(name, value)
    sys.stdout.flush()  # exec drops what Python still buffers
    sys.stderr.flush()
    os.execve(sys.executable, lean_argv(), env)
