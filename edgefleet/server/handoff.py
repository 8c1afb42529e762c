"""The hand-off from the CLI's process to a lean server process (issue 16).

``edgefleet server`` parses and validates its flags with the full CLI (Typer,
the settings plumbing, the agent's settings for ``up``), which would then stay
resident for as long as the server runs: ~4 MB of every server's RSS, at idle
and with 10,000 devices alike. :func:`hand_off` ``exec``s the same command line
instead (same pid, so supervisors and ``kill`` see one process) and passes the
validated settings on an inherited pipe; :func:`run_received` reads them back
in the new process, which imports no CLI module.

Secrets in the settings (the server's key, tokens, a database password) go
through the pipe, never the environment, so they do not appear in
``/proc/<pid>/environ``. The agent's hand-off (:mod:`edgefleet.cli.handoff`)
still passes its settings in the environment (docs/SECURITY.md says what that
exposes); moving it onto this pipe is left to do.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from edgefleet.server.settings import ServerSettings

HANDOFF_ENV = "EDGEFLEET_SERVER_SETTINGS_FD"
"""Names the pipe holding the settings, in the lean process only (removed from
its environment at once, so children never see it)."""

PIPE_LIMIT = 16_000
"""Bytes a pipe takes without a reader on every POSIX system we run on (macOS:
16 KiB); larger settings (never seen: ~2.5 KB) run in this process instead."""


def plain(settings: ServerSettings) -> str:
    """The settings as JSON with secrets in clear (``model_dump_json`` masks them)."""
    data = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
    return json.dumps(data)


def hand_off(settings: ServerSettings) -> None:
    """Serve with ``settings`` from a lean process (never returns). Where ``exec``
    or the pipe cannot be used, serves from this process."""
    data = plain(settings).encode()
    if os.name != "posix" or len(data) > PIPE_LIMIT:
        from edgefleet.server.main import run

        run(settings)
        return
    read, write = os.pipe()
    view = memoryview(data)
    while view:
        view = view[os.write(write, view) :]
    os.close(write)
    os.set_inheritable(read, True)
    env = {**os.environ, HANDOFF_ENV: str(read)}
    sys.stdout.flush()  # exec drops what Python still buffers
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def received() -> ServerSettings | None:
    """The settings handed over by :func:`hand_off`, or None in a process that
    was not started by it."""
    fd = os.environ.pop(HANDOFF_ENV, None)
    if fd is None:
        return None
    with os.fdopen(int(fd), "rb") as pipe:
        raw = pipe.read()
    from edgefleet.server.settings import ServerSettings

    return ServerSettings.model_validate_json(raw)


def run_received() -> bool:
    """Serve with the handed-over settings; False (nothing run) when there are none."""
    settings = received()
    if settings is None:
        return False
    from edgefleet.server.main import run

    run(settings)
    return True
