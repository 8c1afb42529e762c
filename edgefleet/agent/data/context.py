"""What a workload learns at ``EDGEFLEET_CONTEXT_URL``: its device and its job.

    GET {data url}/context  ->  {"device": {"id", "name", "labels", "metadata",
                                            "peripherals"},
                                 "job": {"id", "version", "revision", ...}}

Pure: built from the job's assignment (which carries the device's name,
labels and metadata, kept on disk with the desired state, so it answers with
no server in reach) and the agent's own peripherals and policy.

Peripherals are filtered to what the device's owner lets jobs use: a
workload must not learn host device paths it has no right to open. One with a
path is shown only if that path is a consented peripheral
(``--allow-peripheral KIND`` for a discovered one, ``--peripheral
KIND=/dev/PATH``) or under an ``--allow-host-path``; one without a path
(wifi) only if its kind or name is allowed. ``--allow-privileged`` does not
widen this: a job that is not privileged itself still sees only the above.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from edgefleet.spec.policy import DevicePolicy, path_allowed
from edgefleet.wire.messages import Peripheral
from edgefleet.wire.workload import JobAssignment


class ContextDevice(BaseModel):
    id: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    peripherals: list[Peripheral] = Field(default_factory=list)


class ContextJob(BaseModel):
    id: str
    version: str
    revision: str
    project: str
    application: str


class WorkloadContext(BaseModel):
    """The answer, SPEC's pinned shape plus ``revision``, ``project`` and
    ``application`` on the job."""

    device: ContextDevice
    job: ContextJob


def visible_peripherals(reported: list[Peripheral], policy: DevicePolicy) -> list[Peripheral]:
    """The agent's peripherals that jobs on this device may use (see module doc)."""
    consented = set(policy.peripherals)
    kinds = set(policy.peripheral_kinds)
    shown: list[Peripheral] = []
    seen: set[tuple[str, str, str | None]] = set()
    for p in reported:
        if p.path:
            allowed = p.path in consented or (
                p.path.startswith("/") and path_allowed(p.path, policy.host_paths)
            )
        else:
            allowed = p.kind in kinds or p.name in kinds
        key = (p.kind, p.name, p.path)
        if allowed and key not in seen:
            seen.add(key)
            shown.append(p)
    return shown


def build(
    device_id: str,
    fallback_name: str,
    assignment: JobAssignment,
    revision: str,
    peripherals: list[Peripheral],
) -> WorkloadContext:
    """The context of one job; ``fallback_name`` (the name the device enrolled
    with) stands in until a server that sends the device's context is reached."""
    described = assignment.device
    return WorkloadContext(
        device=ContextDevice(
            id=device_id,
            name=described.name if described is not None and described.name else fallback_name,
            labels=dict(described.labels) if described is not None else {},
            metadata=dict(described.metadata) if described is not None else {},
            peripherals=peripherals,
        ),
        job=ContextJob(
            id=assignment.job_id,
            version=assignment.version,
            revision=revision,
            project=assignment.project_id,
            application=assignment.application,
        ),
    )
