"""Which device a connecting agent's credential names: looked up in groups.

Every handshake starts with this lookup (before the WebSocket is accepted;
admission bounds how many wait for it). After a server restart hundreds
arrive at once, so the lookups of the moment are one query
(:class:`~edgefleet.server.gateway.grouped.Grouped`), and it reads only the
columns a handshake needs into a small :class:`Known` rather than whole ORM
rows of the device and its project (identity map, attribute state), which the
handshake then threw away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from edgefleet.server.auth import secrets
from edgefleet.server.context import ServerContext
from edgefleet.server.db.among import among
from edgefleet.server.devices.tables import Device
from edgefleet.server.gateway.grouped import Grouped
from edgefleet.server.projects.tables import Project

MAX_GROUP = 256


@dataclass(frozen=True, slots=True)
class Known:
    """A device found by its credential: what its handshake needs."""

    pk: int
    id: str
    name: str
    project_pk: int
    project: str
    facts: dict[str, Any]
    agent_version: str
    public_key: str | None


class Credentials:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._lookups: Grouped[str, Known | None] = Grouped(
            self._read, max_group=MAX_GROUP, name="credential-lookups"
        )

    async def find(self, credential: str | None) -> Known | None:
        """The device whose credential this is; None if none is (never enrolled
        here, or deleted)."""
        return await self._lookups(secrets.digest(credential or ""))

    async def _read(self, digests: list[str]) -> list[Known | None]:
        async with self.ctx.session() as db:
            rows = await db.execute(
                select(
                    Device.credential_hash,
                    Device.pk,
                    Device.id,
                    Device.name,
                    Device.project_pk,
                    Project.name,
                    Device.facts,
                    Device.agent_version,
                    Device.public_key,
                )
                .join(Project, Project.pk == Device.project_pk)
                .where(among(db, Device.credential_hash, set(digests)))
            )
            found = {
                digest: Known(pk, id_, name, project_pk, project, facts, version, key)
                for digest, pk, id_, name, project_pk, project, facts, version, key in rows
            }
        return [found.get(digest) for digest in digests]
