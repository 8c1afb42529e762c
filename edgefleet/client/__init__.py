"""The Python API client. The CLI uses only this; so can your scripts::

from edgefleet.client import Client
with Client("http://127.0.0.1:8400", token) as ef:
    for device in ef.devices(selector="site=chicago"):
        print(device["name"], device["is_online"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefleet.client.errors import (
    ApiError,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    Unauthorized,
)

if TYPE_CHECKING:
    from edgefleet.client.client import Client


def __getattr__(name: str) -> Any:
    """``Client`` is loaded on first use: it brings httpx, and the CLI imports
    this package for its errors long before (or without) making a request."""
    if name == "Client":
        from edgefleet.client.client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ServerError",
    "Unauthorized",
]
