"""Credential lookups on a real SQLite file: handshakes arriving together are
answered from one query, each with its own device (and project name); an
unknown credential, a missing one, and a deleted device's find nothing."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, update

from edgefleet.server.auth import secrets
from edgefleet.server.context import ServerContext
from edgefleet.server.devices.tables import Device
from edgefleet.server.gateway.credentials import Credentials
from tests.support.device_rows import add_devices


async def test_lookups_arriving_together_each_find_their_own_device(ctx: ServerContext) -> None:
    async with ctx.session() as db:
        devices = await add_devices(db, 3)
        for n, device in enumerate(devices):
            device.credential_hash = secrets.digest(f"efd_secret{n}")
        devices[1].facts = {"agent_version": "2.0"}
        devices[1].agent_version = "2.0"
        devices[1].public_key = "pk1"
        await db.commit()
        pks = [d.pk for d in devices]
    credentials = Credentials(ctx)
    reads: list[int] = []
    read = credentials._read

    async def counted(digests: list[str]) -> list[object]:
        reads.append(len(digests))
        return list(await read(digests))

    credentials._lookups._handle = counted
    found = await asyncio.gather(
        credentials.find("efd_secret2"),
        credentials.find("efd_unknown"),
        credentials.find(None),
        credentials.find("efd_secret1"),
        credentials.find("efd_secret1"),
    )
    assert reads == [5]  # one query for the five
    two, unknown, missing, one, again = found
    assert unknown is None and missing is None
    assert two is not None and one is not None
    assert (two.pk, two.id, two.name, two.project) == (pks[2], "d2", "pi-2", "north")
    assert (one.facts, one.agent_version, one.public_key) == (
        {"agent_version": "2.0"},
        "2.0",
        "pk1",
    )
    assert again == one

    async with ctx.session() as db:  # deleted, or its credential replaced: found no more
        await db.execute(delete(Device).where(Device.pk == pks[1]))
        await db.execute(update(Device).where(Device.pk == pks[2]).values(credential_hash="x"))
        await db.commit()
    assert await credentials.find("efd_secret1") is None
    assert await credentials.find("efd_secret2") is None
    assert (await credentials.find("efd_secret0")) is not None
