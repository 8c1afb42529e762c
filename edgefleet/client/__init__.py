"""The Python API client. The CLI uses only this; so can your scripts::

from edgefleet.client import Client
with Client("http://127.0.0.1:8400", token) as ef:
    for device in ef.devices(selector="site=chicago"):
        print(device["name"], device["is_online"])
"""

from edgefleet.client.client import Client
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
