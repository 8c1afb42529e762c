"""What the server answers about personal instances, their saves, and project volumes.

Typed views of the JSON bodies (generated once from the server's OpenAPI
schemas): plain dicts at run time, so ``result["id"]`` keeps working, and
mypy checks every key a caller reads.
"""

from __future__ import annotations

from typing import TypedDict


class Launchable(TypedDict):
    """Whether members may launch instances of an application."""

    application: str
    application_id: str
    launchable: bool
    idle_timeout: int | None


class InstanceDevice(TypedDict):
    """The device an instance runs on, with its state."""

    device: str
    device_name: str
    state: str
    error: str | None


class Instance(TypedDict):
    """A personal instance of a launchable application."""

    id: str
    app: str
    application_id: str
    version: str
    project: str
    project_id: str
    job: str
    owner: str
    shared_with: list[str]
    state: str
    stopped_reason: str | None
    idle_timeout: int
    last_access: str
    created_at: str
    devices: list[InstanceDevice]
    urls: list[str]


class SaveProgress(TypedDict):
    """How far a save's push has come (layers and bytes)."""

    layers_done: int
    layers_total: int
    bytes_done: int
    bytes_total: int


class InstanceSave(TypedDict):
    """Saving an instance's service as a new version."""

    id: str
    instance: str
    service: str
    app: str
    version: str
    registry: str
    device: str
    state: str
    status: str
    progress: SaveProgress
    image: str | None
    error: str | None
    created_at: str
    finished_at: str | None


class Volume(TypedDict):
    """A project volume."""

    id: str
    name: str
    project: str
    project_id: str
    engine_name: str
    created_by: str
    created_at: str


class VolumeDevice(TypedDict):
    """A project volume on one device: state and size."""

    device: str
    device_name: str
    state: str
    size: int | None
    error: str | None


class VolumeDetail(Volume):
    """A project volume with its state and size on each device."""

    devices: list[VolumeDevice]
