"""The ``edgefleet`` command: process verbs (server, agent, up, sim) whose flags
come from the settings classes, and client verbs that talk to the REST API
only through :mod:`edgefleet.client`.

:func:`main` sends ``edgefleet agent ...`` to a lean entry that loads neither
the HTTP client nor the other verbs: the agent runs on small devices and must
stay small (an idle agent under 40 MB).
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
    from edgefleet.cli.main import main as full_main

    full_main()
