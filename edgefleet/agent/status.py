"""How a job stands on this device, computed from the engine's workloads.

While an upgrade is in flight or after one failed, the old revision keeps
serving: the status then shows the old ``version`` with the new one as
``target_version``, and ``error`` says why the new one is not there.
"""

from __future__ import annotations

from collections.abc import Callable

from edgefleet.agent.changes.plan import revision_of
from edgefleet.agent.runtimes.base import Workload
from edgefleet.spec.model import Service
from edgefleet.wire.status import DeviceJobState, HealthState, JobStatus, ServiceStatus
from edgefleet.wire.workload import JobAssignment


def service_status(w: Workload | None, spec: Service, health: HealthState | None) -> ServiceStatus:
    if w is None:
        return ServiceStatus(state="pending", image=spec.image)
    state: DeviceJobState
    error = w.error
    if w.state == "running":
        state = "running"
        if health == "unhealthy":
            error = "healthcheck failing"
    elif w.state == "restarting":
        state = "starting"
        error = error or f"restarting after exit code {w.exit_code}"
    elif w.state == "created":
        state = "starting"
    elif w.state in ("exited", "dead"):
        if w.exit_code == 0:
            state = "exited"
        else:
            state = "failed"
            error = error or f"exited with code {w.exit_code}"
    elif w.state == "paused":
        state = "starting"
    else:
        state = "pending"
    return ServiceStatus(
        state=state,
        restarts=w.restarts,
        exit_code=w.exit_code,
        image=w.image or spec.image,
        health=health if spec.healthcheck is not None else None,
        error=error,
        started_at=w.started_at,
    )


def job_status(
    assignment: JobAssignment,
    workloads: list[Workload],
    *,
    phase: str | None,
    error: str | None,
    health: Callable[[str], HealthState | None],
) -> JobStatus:
    revision = revision_of(assignment)
    names = set(assignment.spec.services)
    current = {w.service: w for w in workloads if w.revision == revision}
    older = [w for w in workloads if w.revision != revision]
    if names <= set(current) or not older:
        serving = current
        version = assignment.version if current else None
    else:
        serving = {w.service: w for w in older}
        version = older[0].version
    services = {
        name: service_status(
            serving.get(name),
            assignment.spec.services[name],
            health(serving[name].id) if name in serving else None,
        )
        for name in sorted(names)
    }
    states = [s.state for s in services.values()]
    state: DeviceJobState
    if phase in ("pulling", "starting"):
        state = phase  # type: ignore[assignment]
    elif not names and assignment.periodic is not None:
        state = "running"  # a periodic job with only one-shot services: waiting to fire
        version = assignment.version
    elif (states and all(s == "running" for s in states)) or (
        states and all(s in ("running", "exited") for s in states) and "running" in states
    ):
        state = "running"
    elif states and all(s == "exited" for s in states):
        state = "exited"
    elif "failed" in states:
        state = "failed"
    elif not serving:
        state = "failed" if error else "pending"
    else:
        state = "starting"
    if state == "running" and any(s.health == "unhealthy" for s in services.values()):
        error = error or "a service's healthcheck is failing"
    return JobStatus(
        job_id=assignment.job_id,
        state=state,
        version=version,
        target_version=assignment.version,
        error=error,
        services=services,
    )
