"""The agent's own Docker Engine API client (Docker, Podman, balenaEngine).

Why not the ``docker`` SDK: it brings requests, urllib3, http.client, ssl and
email into the agent (about 11 MB of an idle agent's 40, issue 18) to speak
HTTP over a unix socket. This package does it with h11, which the agent loads
anyway. Data flows: :mod:`.client` (the nouns) -> :mod:`.session` (API
version, paths, error answers) -> :mod:`.transport` (a socket per request,
h11 framing) -> the engine; each noun
(:mod:`.containers`, :mod:`.images`, :mod:`.networks`, :mod:`.volumes`,
:mod:`.execs`) builds its requests and reads its answers, :mod:`.streams`
parses the long ones (multiplexed output, JSON progress) without I/O, and
:mod:`.errors` is the one error tree callers catch.
"""

from edgefleet.agent.engine.client import EngineClient
from edgefleet.agent.engine.errors import (
    APIError,
    EngineError,
    EngineUnreachable,
    ImageNotFound,
    NotFound,
)

__all__ = [
    "APIError",
    "EngineClient",
    "EngineError",
    "EngineUnreachable",
    "ImageNotFound",
    "NotFound",
]
