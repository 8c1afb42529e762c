"""What a staged rollout changes in a device's desired state.

While a job's rollout is ``rolling`` or ``paused``, a device that has not been
moved yet keeps the previous version (its spec as it was resolved then), so a
version change never reaches a batch before its turn, and a device that
joins a selector job mid-rollout starts on the previous version too (it gets
the new one when the rollout is done). Every assignment also carries the
job's update-lock deadline and the time of the last operator override.

A configuration rollout holds devices back on the previous *inputs*
(:mod:`.inputs`) rather than a previous version: :meth:`Pins.held` answers
which inputs a device should be rendered with, and the render step
(:mod:`edgefleet.server.variables.render`) lays them over the current ones.
After a revert or abort every device of the job stays on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.rollouts.inputs import HeldInputs
from edgefleet.server.rollouts.machine import ACTIVE, REVERTED
from edgefleet.server.rollouts.tables import JobRollout
from edgefleet.spec.model import AppSpec
from edgefleet.wire.workload import JobAssignment


@dataclass
class Pin:
    version: str | None
    spec: AppSpec | None
    moved: set[str] = field(default_factory=set)
    lock_timeout: float | None = None
    locks_overridden_at: datetime | None = None
    inputs: HeldInputs | None = None  # previous secrets/variables for held devices


@dataclass
class Pins:
    by_job: dict[int, Pin] = field(default_factory=dict)

    def held(self, job_pk: int, device_id: str) -> HeldInputs | None:
        """The previous inputs this device of the job keeps, if it is held back."""
        pin = self.by_job.get(job_pk)
        if pin is None or pin.inputs is None or device_id in pin.moved:
            return None
        return pin.inputs

    def adjust(self, job_pk: int, device_id: str, assignment: JobAssignment) -> JobAssignment:
        """``assignment`` as this device should get it under the job's rollout."""
        pin = self.by_job.get(job_pk)
        if pin is None:
            return assignment
        update: dict[str, object] = {
            "lock_timeout": pin.lock_timeout,
            "locks_overridden_at": pin.locks_overridden_at,
        }
        if pin.spec is not None and pin.version is not None and device_id not in pin.moved:
            update.update(version=pin.version, spec=pin.spec)
        return assignment.model_copy(update=update)


def held_version(row: JobRollout | None) -> tuple[str, set[str]] | None:
    """The version a staged rollout keeps the devices it has not moved yet on,
    and the ids of those it has moved; None when it holds nobody back."""
    if row is None or row.state not in ACTIVE or not row.from_version or not row.from_resolved:
        return None
    return row.from_version, set((row.progress or {}).get("moved", {}))


async def load(db: AsyncSession, job_pks: Iterable[int]) -> Pins:
    """The rollouts of these jobs, in one query."""
    pks = sorted(set(job_pks))
    pins = Pins()
    if not pks:
        return pins
    for row in await db.scalars(select(JobRollout).where(JobRollout.job_pk.in_(pks))):
        pin = Pin(
            version=None,
            spec=None,
            lock_timeout=float(row.settings.get("lock_timeout", 600.0)),
            locks_overridden_at=row.locks_overridden_at,
        )
        previous = held_version(row)
        if previous is not None:
            pin.version, pin.moved = previous
            pin.spec = AppSpec.model_validate(row.from_resolved)
        held = (row.progress or {}).get("held") or {}
        if held and row.state in (*ACTIVE, *REVERTED):
            pin.inputs = HeldInputs.model_validate(held)
            pin.moved = set((row.progress or {}).get("moved", {}))
        pins.by_job[row.job_pk] = pin
    return pins
