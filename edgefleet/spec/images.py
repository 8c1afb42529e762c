"""Image references and the registry each one is pulled from.

The server stores registry credentials by host and the agent looks them up
by the host of the image it pulls, so both sides must read an image name the
same way the engines do: the first path component is a registry host when it
has a dot or a port or is ``localhost``; otherwise the image is on Docker Hub.
"""

from __future__ import annotations

import re

DOCKER_HUB = "docker.io"
_HUB_NAMES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
_HOST = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*|\[[0-9a-f:]+\])(?::\d{1,5})?$"
)


def normalize_registry(text: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``Registry.Example.com:5000`` ->
    ``registry.example.com:5000``. Raises :class:`ValueError` if it is not a host."""
    host = text.strip().lower()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.split("/", 1)[0]
    if host in _HUB_NAMES:
        return DOCKER_HUB
    if not host or not _HOST.match(host):
        raise ValueError(
            f"{text!r} is not a registry host such as ghcr.io, registry.example.com:5000 or docker.io"
        )
    return host


def registry_of(image: str) -> str:
    """The registry host an image is pulled from (``docker.io`` for ``nginx:1.27``)."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        try:
            return normalize_registry(first)
        except ValueError:
            return first.lower()
    return DOCKER_HUB


def split_reference(image: str) -> tuple[str, str]:
    """``(repository, tag or digest)``: ``redis`` -> ``("redis", "latest")``,
    ``host:5000/app@sha256:...`` -> ``("host:5000/app", "sha256:...")``."""
    if "@" in image:
        repository, _, digest = image.partition("@")
        return repository, digest
    name, sep, tag = image.rpartition(":")
    if sep and name and "/" not in tag:
        return name, tag
    return image, "latest"
