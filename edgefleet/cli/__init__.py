"""The ``edgefleet`` command: process verbs (server, agent, up, sim) whose flags
come from the settings classes, and client verbs that talk to the REST API
only through :mod:`edgefleet.client`.

:func:`main` sends ``edgefleet agent ...`` to a lean entry that loads neither
the HTTP client nor the other verbs: the agent runs on small devices and must
stay small (target: an idle agent within 40 MB RSS; measured 39.1 MB with
the process runtime and an http:// server, 45.5 MB with https://,
2026-12-01). The other verbs are loaded lazily too (:mod:`edgefleet.cli.lazy`):
a CLI call should cost little more than its request.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "agent":
        import os

        # edgefleet uses no pydantic plugins; looking for them reads the metadata
        # of every installed package, which costs the agent megabytes.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        from edgefleet.cli.agent_entry import main as agent_main

        agent_main()
        return
    if sys.argv[1:2] == ["server"]:
        # the lean server process `edgefleet server` hands off to (server/handoff.py)
        from edgefleet.server.handoff import run_received

        if run_received():
            return
    # httpx imports its own command-line tool (click, Rich, Pygments: ~40 ms)
    # when it is importable; this process never runs it. A None entry makes that
    # optional import fail, and httpx carries on without it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from edgefleet.cli.exec_once import plain_args, run_plain

    plain = plain_args(sys.argv[1:])
    if plain is not None:
        # `exec DEVICE -- CMD`, the verb scripts call in loops: no Typer to build
        # (~60 ms of CPU); any other shape of exec is Typer's (exec_once.py).
        run_plain(*plain)
    from edgefleet.cli.main import main as full_main

    full_main()
