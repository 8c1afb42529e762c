"""Which devices a job is on: targets, requirements, time window.

Called when a job is created, upgraded, cancelled, when the fleet changes
(a device enrolls, is relabeled or deleted) and by the scheduler's clock.
Idempotent: running it twice changes nothing the second time, which is what
makes it safe to run from any replica.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Row, Select, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import parse_selector
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices import query as device_query
from edgefleet.server.devices.tables import Device
from edgefleet.server.events import audit
from edgefleet.server.jobs.eligibility import facts_key, why_not
from edgefleet.server.jobs.tables import Job, JobDevice, job_device_update
from edgefleet.server.loans import service as loans
from edgefleet.server.loans import view as loan_view
from edgefleet.server.reservations.gate import gate
from edgefleet.server.reservations.tables import Reservation
from edgefleet.spec.model import AppSpec
from edgefleet.wire.messages import DeviceFacts

TERMINAL = ("cancelled", "expired")

PART = 500
"""Rows handled between two turns of the event loop. The scheduler's periodic
pass plans every selector job on the loop: at 10,000 devices, 10,000 rows of
JSON facts decoded and judged in one go stalled every API request behind it
for over a second, every two minutes (issue 16's 10-minute run)."""

Columns = TypeVarTuple("Columns")


async def _rows(db: AsyncSession, statement: Select[*Columns]) -> list[Row[*Columns]]:
    """All of ``statement``'s rows, fetched and decoded :data:`PART` at a time,
    with a turn of the event loop between parts. Streamed, not buffered: a
    driver that decodes JSON as it fetches (psycopg) decoded every row's facts
    in one go, 1.2 s of a 10,000-device PostgreSQL pass with the loop held."""
    rows: list[Row[*Columns]] = []
    result = await db.stream(statement.execution_options(yield_per=PART))
    async for part in result.partitions(PART):
        rows.extend(part)
        await asyncio.sleep(0)
    return rows


def active(job: Job, now: datetime | None = None) -> bool:
    now = now or utcnow()
    if job.state in TERMINAL:
        return False
    if job.start is not None and job.start > now:
        return False
    return not (job.end is not None and job.end <= now)


async def targets(db: AsyncSession, job: Job) -> list[tuple[int, dict[str, Any]]]:
    """(device pk, reported facts) of the devices the job targets: only the two
    columns eligibility needs, for 10,000 devices as cheaply as for ten.

    Besides its project's own devices: devices lent to its project (a selector
    sees only the labels the loan exposes), and guest devices it already runs
    on whose loan is gone, so their row can say "loan revoked"
    (:mod:`edgefleet.server.reservations.gate` blocks those). Another
    project's device is never a target otherwise, whatever ids the job holds."""
    lent = await loans.borrowed(db, job.project_pk)
    guest_rows: set[int] = set()
    if job.pk is not None:  # a job being created runs nowhere yet
        guest_rows = set(
            await db.scalars(
                select(JobDevice.device_pk)
                .join(Device, Device.pk == JobDevice.device_pk)
                .where(
                    JobDevice.job_pk == job.pk,
                    JobDevice.assigned.is_(True),
                    Device.project_pk != job.project_pk,
                )
            )
        )
    found: list[tuple[int, dict[str, Any]]] = []
    if job.selector is None:
        listed = select(Device.pk, Device.facts, Device.project_pk).where(
            Device.id.in_(job.target_devices or [])
        )
        for pk, facts, owner in await _rows(db, listed.order_by(Device.pk)):
            if owner == job.project_pk or pk in lent or pk in guest_rows:
                found.append((pk, facts or {}))
        return found
    selector = parse_selector(job.selector)
    own = select(Device.pk, Device.facts).where(
        Device.project_pk == job.project_pk, device_query.selector_clause(selector)
    )
    own_rows = await _rows(db, own.order_by(Device.pk))
    found = [(pk, facts or {}) for pk, facts in own_rows]
    others = sorted(set(lent) | guest_rows)
    if others:
        rows = await db.execute(
            select(Device.pk, Device.facts, Device.labels).where(
                Device.pk.in_(others), Device.project_pk != job.project_pk
            )
        )
        for pk, facts, labels in rows.all():
            loan = lent.get(pk)
            if loan is None or selector.matches(
                loan_view.exposed(labels or {}, loan.expose_labels)
            ):  # no loan: it ran here, and its row must say "loan revoked"
                found.append((pk, facts or {}))
    return found


@dataclass
class Plan:
    """What :func:`write` will change for one job, decided by :func:`plan`
    from reads alone (new rows lack only the job's pk)."""

    new_rows: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # newly refused devices, for the audit
    changed: set[int] = field(default_factory=set)


async def assign(db: AsyncSession, job: Job, version: str, *, upgraded: bool = False) -> set[int]:
    """Bring job_devices in line with the job; returns the device pks whose
    desired state changed (the caller bumps and pushes them).

    Runs on every fleet change and on the scheduler's periodic pass, for jobs
    on 10,000 devices: existing rows are read as plain columns (no ORM
    objects), devices with the same capabilities are judged once, new rows go
    in as one bulk insert and only rows that really change are updated, in
    one executemany. A pass that finds nothing to do writes nothing."""
    return await write(db, job, await plan(db, job, version, upgraded=upgraded))


async def plan(
    db: AsyncSession,
    job: Job,
    version: str,
    *,
    upgraded: bool = False,
    reservation: Reservation | None = None,
) -> Plan:
    """Every read :func:`assign` needs, and its decisions; writes nothing.

    ``job`` may not be in the database yet (``job.pk`` is None: the job being
    created, whose ``reservation`` is not attached yet): then it has no rows,
    and the caller inserts it just before :func:`write`. On SQLite the write
    lock is taken by the first write of a transaction and held to its commit,
    so a fan-out to thousands of devices holds it for the writes only, not
    for these reads as well (each a round trip through a busy event loop)."""
    spec = AppSpec.model_validate(job.resolved)
    existing: dict[int, Any] = {}
    if job.pk is not None:
        existing_rows = select(
            JobDevice.pk,
            JobDevice.device_pk,
            JobDevice.assigned,
            JobDevice.eligible,
            JobDevice.state,
            JobDevice.error,
            JobDevice.target_version,
        ).where(JobDevice.job_pk == job.pk)
        existing = {row.device_pk: row for row in await _rows(db, existing_rows)}
    wanted = dict(await targets(db, job)) if active(job) else {}
    result = Plan()
    changed, refused = result.changed, result.refused
    now = utcnow()
    blocks = await gate(db, job, spec, wanted, now, reservation=reservation)
    verdicts: dict[str, str | None] = {}
    for judged, (pk, facts) in enumerate(wanted.items(), 1):
        if judged % PART == 0:
            await asyncio.sleep(0)
        key = facts_key(facts)
        if key not in verdicts:
            verdicts[key] = why_not(spec, DeviceFacts.model_validate(facts))
        reason = verdicts[key]
        error = None if reason is None else f"cannot run here: {reason}"
        row = existing.get(pk)
        if error is not None and (row is None or row.error != error):
            refused[pk] = error
        blocked_state, error = ("failed", error) if reason else blocks.get(pk, ("failed", None))
        eligible = error is None
        if row is None:
            result.new_rows.append(
                {
                    "device_pk": pk,
                    "assigned": True,
                    "eligible": eligible,
                    "state": "pending" if eligible else blocked_state,
                    "error": error,
                    "services": {},
                    "target_version": version,
                    "updated_at": now,
                }
            )
            if eligible:
                changed.add(pk)
            continue
        state, row_error = row.state, row.error
        if not eligible:
            state, row_error = blocked_state, error
        elif not row.eligible:
            state, row_error = "pending", None
        retarget = row.target_version != version
        if (bool(row.assigned), bool(row.eligible)) != (True, eligible) or (
            (upgraded or retarget) and eligible
        ):
            changed.add(pk)
        after = (True, eligible, state, row_error, version)
        if after != (
            bool(row.assigned),
            bool(row.eligible),
            row.state,
            row.error,
            row.target_version,
        ):
            result.updates.append(_update(row, after, now))
    for pk, row in existing.items():
        if pk not in wanted and row.assigned:
            result.updates.append(
                _update(row, (False, row.eligible, row.state, row.error, row.target_version), now)
            )
            if row.eligible:
                changed.add(pk)
    return result


async def write(db: AsyncSession, job: Job, planned: Plan) -> set[int]:
    """Write ``planned`` for ``job`` (now in the database): the refusals' audit,
    new rows in bulk, changed rows in one executemany. Returns the devices
    whose desired state changed."""
    await audit.refusals(db, job.project_pk, job.id, planned.refused)
    new_rows = [{"job_pk": job.pk, **row} for row in planned.new_rows]
    for start in range(0, len(new_rows), 1000):
        await db.execute(insert(JobDevice), new_rows[start : start + 1000])
    if planned.updates:
        statement = job_device_update(
            "assigned", "eligible", "state", "error", "target_version", "updated_at"
        )
        for start in range(0, len(planned.updates), 1000):
            await db.execute(statement, planned.updates[start : start + 1000])
    return planned.changed


def _update(
    row: Any, after: tuple[bool, bool, str, str | None, str | None], now: datetime
) -> dict[str, Any]:
    assigned, eligible, state, error, target_version = after
    return {
        "row_pk": row.pk,
        "new_assigned": assigned,
        "new_eligible": eligible,
        "new_state": state,
        "new_error": error,
        "new_target_version": target_version,
        "new_updated_at": now,
    }
