"""What server and agent say to each other about over-the-air agent upgrades.

The server asks with the ``upgrade-agent`` :class:`~edgefleet.wire.messages.Command`
(args: :class:`UpgradeOrder`); the agent answers at once (accepted or refused),
and reports the outcome later in its facts (:class:`UpgradeReport`), because
the process that answers is not the one that finishes: the new version
reconnects and says it is healthy, or the old one comes back and says why not.

Versions become directory names on the device (``versions/<V>/``) and file
names on the server, so both sides accept only :data:`VERSION_PATTERN`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# PEP 440 public and local versions fit; "/", "\\", ".." and leading dots never do.
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z+_-]*(\.[0-9A-Za-z+_-]+)*$"
VERSION_MAX = 64
_VERSION = re.compile(VERSION_PATTERN)
SHA256_PATTERN = r"^[0-9a-f]{64}$"


def valid_version(value: str) -> bool:
    """Whether a version string is safe as a path component on both sides."""
    return len(value) <= VERSION_MAX and bool(_VERSION.match(value))


class UpgradeOrder(BaseModel):
    """Args of the ``upgrade-agent`` command."""

    version: str = Field(pattern=VERSION_PATTERN, max_length=VERSION_MAX)
    sha256: str = Field(pattern=SHA256_PATTERN)
    url: str = Field(
        description="path of the wheel on the server, fetched with the device credential"
    )
    size: int = Field(ge=1)
    deadline: float = Field(
        120.0, gt=0, description="seconds the new version has to reconnect and report healthy"
    )
    attempt: str = Field(
        "", max_length=64, description="the server's rollout id, echoed in reports"
    )


class UpgradeReport(BaseModel):
    """The last upgrade this device tried, reported in its facts."""

    version: str
    state: Literal["installing", "switching", "healthy", "rolled_back", "failed"]
    from_version: str = ""
    reason: str = ""
    at: datetime | None = None
    attempt: str = ""
