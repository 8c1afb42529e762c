"""Datasets as devices report them, and as project members list them.

A device sends its whole list (``DatasetsReport``) on connect and on every
change; the server replaces that device's rows in one transaction. What is
stored is what the agent sent: schema, rounded size, policy. No value.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.auth.caller import Caller
from edgefleet.server.computations.schemas import DatasetOut
from edgefleet.server.computations.scope import EVERYTHING, Scope
from edgefleet.server.computations.tables import FedDataset
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices import query as device_query
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.pagination import Page, PageParams, keyset_rows
from edgefleet.server.projects import service as projects
from edgefleet.wire.messages import DatasetColumn, DatasetPrivacy, DatasetsReport

log = logging.getLogger(__name__)


async def ingest(ctx: ServerContext, session: AgentSession, report: DatasetsReport) -> None:
    device = session.device
    now = utcnow()
    async with ctx.session() as db:
        await db.execute(delete(FedDataset).where(FedDataset.device_pk == device.pk))
        for info in {d.name: d for d in report.datasets}.values():
            db.add(
                FedDataset(
                    device_pk=device.pk,
                    project_pk=device.project_pk,
                    name=info.name,
                    source=info.source,
                    columns=[c.model_dump() for c in info.columns],
                    rows_approx=info.rows_approx,
                    bytes_approx=info.bytes_approx,
                    allow_projects=info.allow_projects,
                    allow_ops=info.allow_ops,
                    min_parties=info.min_parties,
                    error=info.error,
                    updated_at=now,
                    privacy=info.privacy.model_dump(mode="json"),
                )
            )
        await db.commit()
    log.info("device %s reported %d dataset(s)", device.id, len(report.datasets))


async def listing(
    db: AsyncSession,
    caller: Caller,
    page: PageParams,
    scope: Scope = EVERYTHING,
    device: str | None = None,
) -> Page[DatasetOut]:
    """One item per (device, dataset) the caller may see, oldest first."""
    query = (
        select(FedDataset, Device, Presence)
        .join(Device, Device.pk == FedDataset.device_pk)
        .outerjoin(Presence, Presence.device_pk == Device.pk)
    )
    query = device_query.visible(query, caller)
    if scope.project_pk is not None:
        query = query.where(FedDataset.project_pk == scope.project_pk)
    if scope.dataset:
        query = query.where(FedDataset.name == scope.dataset)
    if device:
        query = query.where((Device.id == device) | (Device.name == device))
    found = await keyset_rows(db, query, FedDataset.pk, page, key=lambda row: int(row[0].pk))
    rows = found.items
    names = await projects.names(db, {d.project_pk for _, d, _ in rows})
    now = utcnow()
    items = [
        DatasetOut(
            dataset=ds.name,
            device=dev.id,
            device_name=dev.name,
            project=names[dev.project_pk].name,
            source=ds.source,
            columns=[DatasetColumn.model_validate(c) for c in ds.columns],
            rows_approx=ds.rows_approx,
            bytes_approx=ds.bytes_approx,
            allow_projects=ds.allow_projects,
            allow_ops=ds.allow_ops,
            min_parties=ds.min_parties,
            privacy=DatasetPrivacy.model_validate(ds.privacy or {}),
            error=ds.error,
            is_online=presence is not None and presence.expires_at > now,
            updated_at=ds.updated_at,
        )
        for ds, dev, presence in rows
    ]
    return Page(items=items, next=found.next)
