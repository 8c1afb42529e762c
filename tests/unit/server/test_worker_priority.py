"""The Compose-parsing processes start from a module that costs the standard
library only (they are spawned at every server start)."""

from __future__ import annotations

import subprocess
import sys

from edgefleet.server import limits, worker_priority


def test_a_parsing_process_loads_neither_the_server_nor_starlette() -> None:
    probe = (
        "import sys, edgefleet.server.worker_priority, edgefleet.spec.work;"
        "print(sorted(m for m in sys.modules if m.startswith(('starlette', 'fastapi',"
        " 'edgefleet.server.settings', 'edgefleet.server.limits', 'sqlalchemy'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_pool_starts_its_processes_with_the_light_initializer() -> None:
    from edgefleet.server.settings import ServerSettings

    guards = limits.Limits(ServerSettings())
    try:
        pool = guards._parsers()
        assert pool._initializer is worker_priority.start_parser
    finally:
        guards.close()
