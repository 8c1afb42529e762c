"""What the server answers about agent releases and over-the-air upgrades.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import TypedDict


class AgentRelease(TypedDict):
    """An agent wheel the server holds."""

    id: str
    version: str
    sha256: str
    size: int
    created_at: str
    created_by: str


class UpgradeDevice(TypedDict):
    """One device of an agent upgrade: its state and, for a failure, why."""

    device: str
    name: str
    state: str
    error: str
    batch: int


class AgentUpgrade(TypedDict):
    """An agent upgrade rollout with each device's state."""

    id: str
    project: str
    version: str
    state: str
    max_parallel: int
    deadline: float
    error: str
    device_counts: dict[str, int]
    devices: list[UpgradeDevice]
    created_at: str
    created_by: str
