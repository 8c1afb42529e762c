"""The gateway tests' server context on a real SQLite file, for the job
status sink (it writes through ``ctx.session`` and records events)."""

from tests.unit.server.gateway.conftest import ctx

__all__ = ["ctx"]
