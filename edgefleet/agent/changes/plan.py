"""Plan one change: from what a job should be and what the engine has, the
steps to get there, each with its undo. Pure: no I/O, tested without an engine.

    desired  \\
              >-- plan_job() --> Plan(kind, steps)   kinds:
    actual   /                                      noop     nothing to do
                                                    deploy   first start of a revision
                                                    repair   some services of the revision are missing
                                                    upgrade  start the new revision (or a service's new
                                                             environment, secrets, configs), then retire the old
                                                    finish   the new revision is complete: retire the old
                                                    remove   the job is gone: remove everything

Upgrade order is "start new, then stop old": a new revision that fails to
start or to become healthy is rolled back (its workloads removed) and the
old one never stopped. Because a plan is computed from the engine's actual
state every time, a crash at any step is recovered by planning again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from edgefleet.agent.runtimes.base import (
    Workload,
    deliverable,
    inputs_digest,
    network_name,
    volume_name,
)
from edgefleet.spec.model import AppSpec
from edgefleet.wire.workload import JobAssignment

PlanKind = Literal["noop", "deploy", "repair", "upgrade", "finish", "remove"]


def revision_of(assignment: JobAssignment) -> str:
    """Stable short hash of what would run: same assignment, same revision."""
    # Defaults are left out, so a field added to the spec model later does not
    # change the revision of every running job (which would restart it).
    spec = assignment.spec.model_dump(mode="json", exclude_defaults=True)
    # A service's environment and what its secret and config files hold are
    # not the job's revision but the service's own (inputs_digest): a changed
    # variable or a rotated secret replaces only the services it reaches.
    for service in spec.get("services", {}).values():
        service.pop("environment", None)
        for ref in (*service.get("secrets", ()), *service.get("configs", ())):
            ref.pop("version", None)
            ref.pop("content", None)
    payload = json.dumps({"version": assignment.version, "spec": spec}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


# --- steps: data only; the executor knows how to do and undo each ----------------------


@dataclass(frozen=True)
class EnsureNetwork:
    name: str
    internal: bool = False


@dataclass(frozen=True)
class EnsureVolume:
    name: str


@dataclass(frozen=True)
class Prepare:
    service: str


@dataclass(frozen=True)
class AwaitDependencies:
    service: str


@dataclass(frozen=True)
class CreateAndStart:
    service: str


@dataclass(frozen=True)
class Verify:
    services: tuple[str, ...]


@dataclass(frozen=True)
class RemoveWorkloads:
    workload_ids: tuple[str, ...]


@dataclass(frozen=True)
class RemoveNetworks:
    keep_revision: str | None


@dataclass(frozen=True)
class RemoveVolumes:
    pass


Step = (
    EnsureNetwork
    | EnsureVolume
    | Prepare
    | AwaitDependencies
    | CreateAndStart
    | Verify
    | RemoveWorkloads
    | RemoveNetworks
    | RemoveVolumes
)


@dataclass
class Plan:
    kind: PlanKind
    job_id: str
    revision: str | None = None
    steps: list[Step] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.kind} {self.job_id}@{self.revision} ({len(self.steps)} steps)"


def _start_steps(
    job_id: str, device_id: str, revision: str, spec: AppSpec, services: list[str]
) -> list[Step]:
    steps: list[Step] = []
    container_services = [s for s in spec.services.values() if s.runtime == "container"]
    if container_services:
        default = spec.networks.get("default")
        steps.append(
            EnsureNetwork(
                network_name(job_id, device_id, revision), default is not None and default.internal
            )
        )
        for net, definition in sorted(spec.networks.items()):
            if net != "default":
                steps.append(
                    EnsureNetwork(
                        network_name(job_id, device_id, revision, net), definition.internal
                    )
                )
        for volume in sorted(spec.volumes):
            if not spec.volumes[volume].external:
                steps.append(EnsureVolume(volume_name(job_id, device_id, volume)))
    for name in services:
        steps.append(Prepare(name))
    for name in services:
        steps.append(AwaitDependencies(name))
        steps.append(CreateAndStart(name))
    steps.append(Verify(tuple(services)))
    return steps


def plan_job(
    job_id: str,
    want: JobAssignment | None,
    have: list[Workload],
    networks: list[str],
    device_id: str = "",
) -> Plan:
    if want is None:
        if not have and not networks:
            return Plan("noop", job_id)
        return Plan(
            "remove",
            job_id,
            steps=[
                RemoveWorkloads(tuple(w.id for w in have)),
                RemoveNetworks(keep_revision=None),
                RemoveVolumes(),
            ],
        )
    revision = revision_of(want)
    order = want.spec.start_order()
    # Created but never started: the agent died between create and start (or
    # a start failed before its undo ran). Not a running service: replace it.
    unstarted = [w for w in have if w.revision == revision and w.state == "created"]
    have = [w for w in have if w not in unstarted]
    current = [w for w in have if w.revision == revision]
    others = [w for w in have if w.revision != revision]
    # Same revision, but the service's environment, secrets or configs changed:
    # replace just these (not when a secret is no longer there to deliver: a
    # running service keeps the file it has).
    stale = [
        w
        for w in current
        if w.service in want.spec.services
        and w.inputs != inputs_digest(want.spec.services[w.service])
        and deliverable(want.spec.services[w.service])
    ]
    present = {w.service for w in current}
    # A workload of a service that is no longer in the spec counts as old.
    others += [w for w in current if w.service not in want.spec.services]
    missing = [s for s in order if s not in present]
    current_prefix = network_name(job_id, device_id, revision)
    stale_networks = [n for n in networks if not n.startswith(current_prefix)]

    if not others and stale:
        # Start the services' new inputs beside the old (their names differ by
        # the digest), then retire the old: a start that fails leaves them serving.
        fresh = {w.service for w in current if w not in stale}
        redo = [s for s in order if s not in fresh]
        refresh: list[Step] = [RemoveWorkloads(tuple(w.id for w in unstarted))] if unstarted else []
        refresh += _start_steps(job_id, device_id, revision, want.spec, redo)
        refresh.append(RemoveWorkloads(tuple(w.id for w in stale)))
        return Plan("upgrade", job_id, revision, refresh)
    if not others:
        if not missing:
            if stale_networks:
                return Plan("finish", job_id, revision, [RemoveNetworks(keep_revision=revision)])
            return Plan("noop", job_id, revision)
        kind: PlanKind = "deploy" if not current else "repair"
        clear: list[Step] = [RemoveWorkloads(tuple(w.id for w in unstarted))] if unstarted else []
        return Plan(
            kind,
            job_id,
            revision,
            clear + _start_steps(job_id, device_id, revision, want.spec, missing),
        )
    if not missing:
        return Plan(
            "finish",
            job_id,
            revision,
            [RemoveWorkloads(tuple(w.id for w in others)), RemoveNetworks(keep_revision=revision)],
        )
    steps: list[Step] = []
    if current or unstarted:
        # A half-started new revision (crash mid-upgrade): start it over cleanly.
        steps.append(RemoveWorkloads(tuple(w.id for w in current + unstarted)))
    steps += _start_steps(job_id, device_id, revision, want.spec, order)
    steps.append(RemoveWorkloads(tuple(w.id for w in others)))
    steps.append(RemoveNetworks(keep_revision=revision))
    return Plan("upgrade", job_id, revision, steps)
