"""The agent's Docker Engine API client: one engine, reached by noun.

Works against Docker, Podman's compatible API and balenaEngine. Every call is
blocking (callers run it in a worker thread) and raises only
:mod:`~edgefleet.agent.engine.errors`; the API version, paths and error
answers are :class:`~.session.EngineSession`'s. The objects::

    client.containers   list, inspect, create, start, stop, remove, commit, logs
    client.images       inspect, remove, pull, push, build
    client.networks     list, inspect, create, connect, remove
    client.volumes      list, inspect, create, remove
    client.execs        create, run, start (hijacked), inspect, resize
"""

from __future__ import annotations

from edgefleet.agent.engine.containers import Containers
from edgefleet.agent.engine.execs import Execs
from edgefleet.agent.engine.images import Images
from edgefleet.agent.engine.networks import Networks
from edgefleet.agent.engine.session import EngineSession
from edgefleet.agent.engine.volumes import Volumes


class EngineClient(EngineSession):
    def __init__(self, url: str, timeout: float | None = 120.0) -> None:
        super().__init__(url, timeout)
        self.containers = Containers(self)
        self.images = Images(self)
        self.networks = Networks(self)
        self.volumes = Volumes(self)
        self.execs = Execs(self)
