"""One group of enrollments, checked and staged in a few queries.

:mod:`.enrollments` hands a group of waiting requests to :func:`stage`, in
one transaction. The group reads what it needs at once -- the keys its
requests present, their projects, the device names that could collide --
then decides every request in memory, in arrival order, exactly as if they
had come one by one, and counts each key's uses with one update. Done one
request at a time this was five statements each (a round trip to the
database thread apiece), which was most of an enrollment's cost.

A request is refused for, in this order: an unknown, revoked or expired key;
a key out of uses; a label its key sets otherwise; a name already taken.
Nothing of a refused request is staged, and it spends no use of its key.

A key with a use limit is counted with a compare-and-set on the use count
the group read (:func:`~edgefleet.server.keys.service.take`): if another
transaction counted uses in between, the key is read again, locked (on
PostgreSQL; SQLite already holds its single write lock by then), and its
requests decided again, so a single-use key never enrolls two devices.

The devices enrolled are inserted by one executemany, without RETURNING: no
one needs their primary keys here, and the ORM, which does, wrote them one
INSERT ... RETURNING per device on SQLite (it cannot batch RETURNING there in
a known order): 32 round trips to the database thread for a group of 32.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import secrets
from edgefleet.server.db.among import among
from edgefleet.server.db.base import new_id
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import ApiError, Conflict, Invalid, Unavailable
from edgefleet.server.keys import service as keys
from edgefleet.server.keys.tables import ProvisioningKey
from edgefleet.server.projects.tables import Project
from edgefleet.wire.messages import DeviceFacts

TAKE_ATTEMPTS = 3
"""Compare-and-set rounds for a limited key; the second holds the row's lock,
so a third is never needed unless the database misbehaves."""


@dataclass
class Request:
    """One enrollment, its input already validated by the route."""

    provisioning_key: str
    name: str | None
    default_name: str
    labels: dict[str, str]
    facts: DeviceFacts
    public_key: str | None
    done: asyncio.Future[Enrolled] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True, slots=True)
class NewDevice:
    """What the answer and the event say of a device just enrolled."""

    id: str
    name: str
    labels: dict[str, str]


@dataclass
class Enrolled:
    device: NewDevice
    project: Project
    credential: str
    key_prefix: str


Outcome = Enrolled | ApiError


def label_clashes(key_labels: dict[str, str], agent_labels: dict[str, str]) -> list[str]:
    """Labels the agent asks for that contradict its key's. The key was made by a
    project member and says what the device is for (``tier=test``); the agent is run
    by whoever holds the device, so it may add labels but never change the key's:
    otherwise a volunteer could join prod jobs and receive their secrets."""
    return sorted(k for k, v in agent_labels.items() if k in key_labels and key_labels[k] != v)


async def stage(db: AsyncSession, group: list[Request]) -> list[Outcome]:
    """Each request's outcome, in order; the devices of those enrolled are
    inserted in ``db`` and the keys' uses counted there. The caller commits (a
    name taken meanwhile raises IntegrityError here or at the commit)."""
    found = await keys.by_secret(db, [r.provisioning_key for r in group])
    rows: list[dict[str, Any]] = []
    outcomes: list[Outcome | None] = [None] * len(group)
    by_key: dict[int, list[int]] = {}
    for i, request in enumerate(group):
        pair = found.get(request.provisioning_key)
        key = pair[0] if pair is not None else None
        refused = keys.refusal(key)
        if refused is not None:
            outcomes[i] = refused
        else:
            assert key is not None
            by_key.setdefault(key.pk, []).append(i)
    if by_key:
        chosen = {key.pk: (key, project) for key, project in found.values() if key.pk in by_key}
        wanted = [(chosen[pk][1].pk, group[i]) for pk, ids in by_key.items() for i in ids]
        taken = await _names(db, wanted)
        for pk, ids in by_key.items():
            key, project = chosen[pk]
            requests = [group[i] for i in ids]
            names = await _take(db, key, project, requests, taken.setdefault(project.pk, set()))
            for i, request, name in zip(ids, requests, names, strict=True):
                outcomes[i] = (
                    name
                    if isinstance(name, ApiError)
                    else _device(rows, request, key, project, name)
                )
    if rows:
        await db.execute(insert(Device), rows)
    return [o for o in outcomes if o is not None]


async def _take(
    db: AsyncSession,
    key: ProvisioningKey,
    project: Project,
    requests: list[Request],
    taken: set[str],
) -> list[str | ApiError]:
    """Decide ``requests`` (all on ``key``) and count the uses of those accepted;
    ``taken`` (the project's names) gains the names they get."""
    for attempt in range(TAKE_ATTEMPTS):
        seen = key.uses
        left = None if key.max_uses is None else key.max_uses - seen
        decided, claimed = _decide(key, project, requests, left, taken)
        count = len(claimed)
        if count == 0 or await keys.take(db, key, count, seen=seen):
            taken |= claimed
            return decided
        if attempt + 1 < TAKE_ATTEMPTS:  # counted elsewhere meanwhile: read again, locked
            await db.refresh(key, ["uses"], with_for_update=True)
    raise Unavailable("the provisioning key is busy; try again", field="provisioning_key")


def _decide(
    key: ProvisioningKey,
    project: Project,
    requests: list[Request],
    left: int | None,
    taken: set[str],
) -> tuple[list[str | ApiError], set[str]]:
    """Each request's name, or why it is refused, as if they came one by one with
    ``left`` uses on the key (None: no limit); and the names given out."""
    decided: list[str | ApiError] = []
    claimed: set[str] = set()
    for request in requests:
        if left is not None and len(claimed) >= left:
            decided.append(keys.used_up(key))
            continue
        clashes = label_clashes(key.labels, request.labels)
        if clashes:
            first = clashes[0]
            decided.append(
                Invalid(
                    f"label {first!r} is set by the provisioning key to {key.labels[first]!r}; "
                    f"the agent asked for {request.labels[first]!r}. Key labels cannot be "
                    "overridden: drop --label " + ", ".join(f"{k}=…" for k in clashes),
                    field=f"labels.{first}",
                    labels=clashes,
                )
            )
            continue
        if request.name is None:
            name = _free_name(request.default_name, taken, claimed)
        elif request.name in taken or request.name in claimed:
            decided.append(
                Conflict(
                    f"a device named {request.name!r} already exists in project "
                    f"{project.name!r}; pick another --name or delete the old device",
                    field="name",
                )
            )
            continue
        else:
            name = request.name
        claimed.add(name)
        decided.append(name)
    return decided, claimed


def _free_name(wanted: str, taken: set[str], claimed: set[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``... whichever is free first."""
    name, n = wanted, 1
    while name in taken or name in claimed:
        n += 1
        name = f"{wanted}-{n}"
    return name


def _device(
    rows: list[dict[str, Any]],
    request: Request,
    key: ProvisioningKey,
    project: Project,
    name: str,
) -> Enrolled:
    """The device's row, added to ``rows``, and its outcome."""
    credential = secrets.generate(secrets.DEVICE_PREFIX)
    device = NewDevice(new_id("d"), name, {**request.labels, **key.labels})  # the key's labels win
    rows.append(
        {
            "id": device.id,
            "project_pk": project.pk,
            "name": name,
            "labels": device.labels,
            "meta": {},
            "facts": request.facts.model_dump(mode="json"),
            "agent_version": request.facts.agent_version,
            "credential_hash": secrets.digest(credential),
            "public_key": request.public_key,
            "enrolled_with": key.id,
        }
    )
    return Enrolled(device, project, credential, key.prefix)


async def _names(db: AsyncSession, wanted: Iterable[tuple[int, Request]]) -> dict[int, set[str]]:
    """Per project, the existing device names the requests could collide with: the
    names asked for, and those a default name would be numbered after."""
    pks: set[int] = set()
    exact: set[str] = set()
    prefixes: set[str] = set()
    for pk, request in wanted:
        pks.add(pk)
        if request.name is None:
            prefixes.add(request.default_name)
        else:
            exact.add(request.name)
    found: dict[int, set[str]] = {}
    queries: list[ColumnElement[bool]] = []
    if exact:  # the (project, name) index answers this one
        queries.append(among(db, Device.name, sorted(exact)))
    if prefixes:  # a scan of the projects' devices, as one request alone did
        queries.append(or_(*(Device.name.like(f"{prefix}%") for prefix in prefixes)))
    for condition in queries:
        rows = await db.execute(
            select(Device.project_pk, Device.name).where(
                among(db, Device.project_pk, sorted(pks)), condition
            )
        )
        for pk, name in rows:
            found.setdefault(pk, set()).add(name)
    return found
