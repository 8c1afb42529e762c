"""Enrollments written in groups: one transaction for every request waiting.

A fleet's first start (or a lab plugging in a rack of devices) sends hundreds
of enrollments at once. Written one transaction each, SQLite's single writer
makes them queue behind each other's lock waits (~60/s on two cores); here
the requests that arrive while a group is being written wait for the next
group, and a group of up to ``MAX_GROUP`` is checked and committed together.
Each request still gets its own answer: a bad key, a taken name or a label
the key forbids refuses that request only, with nothing of it stored.

If the group's commit fails (another replica took a name in between), every
request of it is tried again alone, so one conflict never fails the others.

Credentials are 256-bit random secrets stored as SHA-256 digests
(:mod:`edgefleet.server.auth.secrets`): nothing here is a slow hash, and the
agents' reconnect path (one indexed lookup of the digest) is not either.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import secrets
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import ApiError, Conflict, Invalid
from edgefleet.server.keys import service as keys
from edgefleet.server.keys.tables import ProvisioningKey
from edgefleet.server.projects.tables import Project
from edgefleet.wire.messages import DeviceFacts

log = logging.getLogger(__name__)

MAX_GROUP = 128


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


@dataclass
class Enrolled:
    device: Device
    project: Project
    credential: str
    key_prefix: str


def label_clashes(key_labels: dict[str, str], agent_labels: dict[str, str]) -> list[str]:
    """Labels the agent asks for that contradict its key's. The key was made by a
    project member and says what the device is for (``tier=test``); the agent is run
    by whoever holds the device, so it may add labels but never change the key's:
    otherwise a volunteer could join prod jobs and receive their secrets."""
    return sorted(k for k, v in agent_labels.items() if k in key_labels and key_labels[k] != v)


class Enrollments:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._queue: list[Request] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # how many transactions enrollments took (for tests and logs)

    async def enroll(self, request: Request) -> Enrolled:
        """Queue ``request``, and answer once its group is committed (or refused)."""
        self._queue.append(request)
        if self._writer is None or self._writer.done():
            # A task, not the caller: a client hanging up must not abandon the group.
            self._writer = asyncio.create_task(self._drain(), name="enrollments")
        return await request.done

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                await self._write(group)
            except IntegrityError:
                for request in group:
                    if not request.done.done():
                        await self._write([request])
            except Exception as exc:  # answered to each waiting request as a 500
                log.exception("writing %d enrollments failed", len(group))
                for request in group:
                    if not request.done.done():
                        request.done.set_exception(exc)

    async def _write(self, group: list[Request]) -> None:
        enrolled: list[tuple[Request, Enrolled]] = []
        refused: list[tuple[Request, ApiError]] = []
        async with self.ctx.session() as db:
            taken: set[tuple[int, str]] = set()
            for request in group:
                try:
                    enrolled.append((request, await self._one(db, request, taken)))
                except ApiError as exc:
                    refused.append((request, exc))
            try:
                await db.commit()
            except IntegrityError:
                await db.rollback()
                if len(group) > 1:
                    raise  # tried again one by one
                clash = Conflict(
                    "another device took this name at the same moment; try again",
                    field="name",
                )
                refused += [(r, clash) for r, _ in enrolled]
                enrolled = []
        self.groups += 1
        for request, error in refused:
            request.done.set_exception(error)
        for request, result in enrolled:
            self._announce(result)
            request.done.set_result(result)

    async def _one(
        self, db: AsyncSession, request: Request, taken: set[tuple[int, str]]
    ) -> Enrolled:
        """Check and stage one enrollment in the group's transaction. Every refusal
        is raised before anything of this request is staged, except a label clash,
        whose key use is given back."""
        key = await keys.consume(db, request.provisioning_key)
        clashes = label_clashes(key.labels, request.labels)
        if clashes:
            await _give_back(db, key)
            first = clashes[0]
            raise Invalid(
                f"label {first!r} is set by the provisioning key to {key.labels[first]!r}; "
                f"the agent asked for {request.labels[first]!r}. Key labels cannot be "
                "overridden: drop --label " + ", ".join(f"{k}=…" for k in clashes),
                field=f"labels.{first}",
                labels=clashes,
            )
        project = await db.get(Project, key.project_pk)
        assert project is not None
        if request.name is not None:
            exists = (project.pk, request.name) in taken or await db.scalar(
                select(Device.pk).where(
                    Device.project_pk == project.pk, Device.name == request.name
                )
            )
            if exists:
                await _give_back(db, key)
                raise Conflict(
                    f"a device named {request.name!r} already exists in project "
                    f"{project.name!r}; pick another --name or delete the old device",
                    field="name",
                )
            name = request.name
        else:
            name = await _free_name(db, project.pk, request.default_name, taken)
        taken.add((project.pk, name))
        credential = secrets.generate(secrets.DEVICE_PREFIX)
        device = Device(
            id=new_id("d"),
            project_pk=project.pk,
            name=name,
            labels={**request.labels, **key.labels},  # the key's labels win
            meta={},
            facts=request.facts.model_dump(mode="json"),
            agent_version=request.facts.agent_version,
            credential_hash=secrets.digest(credential),
            public_key=request.public_key,
            enrolled_with=key.id,
        )
        db.add(device)
        return Enrolled(device, project, credential, key.prefix)

    def _announce(self, result: Enrolled) -> None:
        device, project = result.device, result.project
        self.ctx.events.record(
            "device.enrolled",
            project.pk,
            f"device {device.name} enrolled with key {result.key_prefix}…",
            device_id=device.id,
            data={"labels": device.labels},
        )


async def _give_back(db: AsyncSession, key: ProvisioningKey) -> None:
    """Undo :func:`keys.consume` for a request refused after it (same transaction)."""
    await db.execute(
        update(ProvisioningKey)
        .where(ProvisioningKey.pk == key.pk)
        .values(uses=ProvisioningKey.uses - 1)
    )


async def _free_name(
    db: AsyncSession, project_pk: int, wanted: str, taken: set[tuple[int, str]]
) -> str:
    names = set(
        await db.scalars(
            select(Device.name).where(
                Device.project_pk == project_pk, Device.name.like(f"{wanted}%")
            )
        )
    )
    names |= {name for pk, name in taken if pk == project_pk}
    if wanted not in names:
        return wanted
    n = 2
    while f"{wanted}-{n}" in names:
        n += 1
    return f"{wanted}-{n}"
