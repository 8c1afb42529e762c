"""The server's shared limits: the Compose-parsing worker processes end with it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from edgefleet.server.limits import Limits
from edgefleet.server.settings import ServerSettings


def test_close_joins_the_parsing_workers(tmp_path: Path) -> None:
    """Workers left running past close() outlive the server's shutdown, and the
    resource tracker then reports their queues' semaphores as leaked on every
    stop."""
    limits = Limits(ServerSettings(data_dir=tmp_path, compose_parse_concurrency=2))
    limits.warm_up()
    workers = list(limits._parsers()._processes.values())
    assert workers, "warm_up started no worker"
    limits.close()
    assert all(not worker.is_alive() for worker in workers)
    assert all(
        child.pid not in {w.pid for w in workers} for child in multiprocessing.active_children()
    )
