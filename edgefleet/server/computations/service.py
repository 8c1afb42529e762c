"""Computations: check a request against the fleet and the owners' policies,
keep it as an audit record, and hand it to the orchestrator.

The server refuses early, from what devices reported (dataset declared and
readable, column numeric, project and op allowed, enough parties, enough of
them online); each device checks its own policy again when invited, and that
check is the one that counts. A refusal is stored too (state ``refused``), so
the audit shows who tried what, and the API answers 4xx: nothing was sent to a
device, nothing released.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.labels import parse_selector
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.computations.plan import Plan, check, task_of
from edgefleet.server.computations.schemas import ComputationIn, ComputationOut, PartyOut, Query
from edgefleet.server.computations.scope import EVERYTHING, Scope
from edgefleet.server.computations.tables import Computation, FedDataset
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.devices import query as device_query
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.errors import ApiError, Invalid, NotFound
from edgefleet.server.pagination import Page, PageParams, keyset_page
from edgefleet.server.projects import service as projects
from edgefleet.server.projects.tables import Project

RECONSTRUCTION_MARGIN = 300.0  # seconds a computation may take beyond its four rounds


async def find(db: AsyncSession, caller: Caller, ref: str) -> Computation:
    row = await db.scalar(select(Computation).where(Computation.id == ref))
    if row is None or not caller.can(row.project_pk, Permission.READ):
        raise NotFound(f"computation {ref!r} not found")
    return row


async def listing(
    db: AsyncSession,
    caller: Caller,
    page: PageParams,
    scope: Scope = EVERYTHING,
    states: list[str] | None = None,
) -> Page[Computation]:
    """The computations the caller may see, oldest first."""
    query = select(Computation)
    query = projects.in_visible(query, Computation.project_pk, caller)
    if scope.project_pk is not None:
        query = query.where(Computation.project_pk == scope.project_pk)
    if scope.dataset:
        query = query.where(Computation.dataset == scope.dataset)
    if states:
        query = query.where(Computation.state.in_(states))
    return await keyset_page(db, query, Computation.pk, page)


async def _project(db: AsyncSession, caller: Caller, body: ComputationIn) -> Project:
    """The project named, else the one the named devices belong to, else the
    caller's only project, else ``default``."""
    if body.project:
        return await projects.find(db, caller, body.project)
    if body.devices:
        query = device_query.visible(select(Device.project_pk), caller).where(
            Device.id.in_(body.devices) | Device.name.in_(body.devices)
        )
        found = set(await db.scalars(query))
        if len(found) == 1:
            return (await projects.names(db, found))[found.pop()]
    visible = caller.visible_projects()
    if visible is not None and len(visible) == 1:
        return (await projects.names(db, set(visible)))[visible[0]]
    return await projects.find(db, caller, "default")


async def _targets(db: AsyncSession, project: Project, body: ComputationIn) -> list[Device]:
    query = select(Device).where(Device.project_pk == project.pk)
    if body.selector is not None:
        selector = str(body.selector)  # normalized to text by the schema
        query = query.where(device_query.selector_clause(parse_selector(selector)))
        devices = list(await db.scalars(query.order_by(Device.pk)))
        if not devices:
            raise Invalid(
                f"no device of project {project.name} matches {body.selector!r}", field="selector"
            )
        return devices
    refs = body.devices or []
    rows = list(await db.scalars(query.where(Device.id.in_(refs) | Device.name.in_(refs))))
    by_ref = {d.id: d for d in rows} | {d.name: d for d in rows}
    missing = [r for r in refs if r not in by_ref]
    if missing:
        raise Invalid(
            f"no device {', '.join(map(repr, missing))} in project {project.name}", field="devices"
        )
    return list({by_ref[r].pk: by_ref[r] for r in refs}.values())


async def create(
    ctx: ServerContext, db: AsyncSession, caller: Caller, body: ComputationIn
) -> Computation:
    project = await _project(db, caller, body)
    caller.require(project.pk, Permission.COMPUTE, f"project {project.name!r}")
    task_of(body, project, caller.name, 0)  # an impossible query: 422, nothing stored
    devices: list[Device] = []
    try:
        devices = await _targets(db, project, body)
        pks = [d.pk for d in devices]
        datasets = {
            row.device_pk: row
            for row in await db.scalars(
                select(FedDataset).where(
                    FedDataset.device_pk.in_(pks), FedDataset.name == body.dataset
                )
            )
        }
        now = utcnow()
        online = set(
            await db.scalars(
                select(Presence.device_pk).where(
                    Presence.device_pk.in_(pks), Presence.expires_at > now
                )
            )
        )
        plan = check(body, project, devices, datasets, online, caller.name)
    except ApiError as exc:
        await _refuse(ctx, db, caller, project, body, devices, exc)
        raise
    row = _row(caller, project, body, devices, plan)
    db.add(row)
    await db.commit()
    ctx.events.record(
        "computation.started",
        project.pk,
        f"{caller.name} asked for the {body.op} of {body.dataset}.{plan.task.column} "
        f"over {len(devices)} devices (computation {row.id})",
        actor=caller.name,
        data={"computation": row.id, "devices": row.invited, "threshold": plan.threshold},
    )
    ctx.computations.launch(row.id, plan, project, body, caller.name)
    return row


def _row(
    caller: Caller, project: Project, body: ComputationIn, devices: list[Device], plan: Plan
) -> Computation:
    return Computation(
        id=new_id("f"),
        project_pk=project.pk,
        created_by=caller.name,
        dataset=body.dataset,
        op=body.op,
        column=plan.task.column,
        bins=body.bins,
        query=body.query(),
        target_devices=body.devices,
        selector=body.selector if isinstance(body.selector, str) else None,
        invited=[d.id for d in devices],
        threshold=plan.threshold,
        round_timeout=body.round_timeout,
        state="running",
        participants=[],
        parties={d.id: {"name": d.name, "status": "invited"} for d in devices},
        replica="",
        expires_at=utcnow() + timedelta(seconds=4 * body.round_timeout + RECONSTRUCTION_MARGIN),
    )


async def _refuse(
    ctx: ServerContext,
    db: AsyncSession,
    caller: Caller,
    project: Project,
    body: ComputationIn,
    devices: list[Device],
    exc: ApiError,
) -> None:
    row = Computation(
        id=new_id("f"),
        project_pk=project.pk,
        created_by=caller.name,
        dataset=body.dataset,
        op=body.op,
        column=body.column or body.columns[0],
        bins=body.bins,
        query=body.query(),
        target_devices=body.devices,
        selector=body.selector if isinstance(body.selector, str) else None,
        invited=[d.id for d in devices],
        threshold=0,
        round_timeout=body.round_timeout,
        state="refused",
        participants=[],
        parties={},
        error=exc.message,
        finished_at=utcnow(),
    )
    db.add(row)
    await db.commit()
    exc.extra["computation"] = row.id
    ctx.events.record(
        "computation.refused",
        project.pk,
        f"refused {caller.name}'s {body.op} of {body.dataset}: {exc.message}",
        actor=caller.name,
        data={"computation": row.id, "devices": row.invited, "reason": exc.message},
    )


async def finish(
    ctx: ServerContext,
    computation_id: str,
    *,
    state: str,
    result: dict[str, Any] | None,
    participants: list[str],
    parties: dict[str, Any],
    error: str | None,
) -> bool:
    """Record the outcome, once: only a computation still running is changed (one
    the sweeper already failed stays failed, and its late result is not released)."""
    async with ctx.session() as db:
        outcome = await db.execute(
            update(Computation)
            .where(Computation.id == computation_id, Computation.state == "running")
            .values(
                state=state,
                result=result,
                participants=participants,
                parties=parties,
                error=error,
                finished_at=utcnow(),
            )
        )
        await db.commit()
        return bool(getattr(outcome, "rowcount", 0))


async def sweep(ctx: ServerContext, running_here: set[str], *, everything: bool = False) -> None:
    """Fail computations whose orchestrator is gone (its replica stopped): those past
    their deadline, or with ``everything`` (one process, just started) all of them."""
    query = select(Computation.id).where(Computation.state == "running")
    if not everything:
        query = query.where(Computation.expires_at < utcnow())
    async with ctx.session() as db:
        stale = list(await db.scalars(query))
    for cid in stale:
        if cid not in running_here:
            await finish(
                ctx,
                cid,
                state="failed",
                result=None,
                participants=[],
                parties={},
                error="the server stopped during the computation; nothing was released",
            )


async def output(
    db: AsyncSession, row: Computation, ctx: ServerContext | None = None
) -> ComputationOut:
    """The API form; with ``ctx``, the round in progress if this replica runs it."""
    project = (await projects.names(db, {row.project_pk}))[row.project_pk]
    parties = [
        PartyOut(device=device, **{k: v for k, v in info.items() if k != "device"})
        for device, info in sorted(row.parties.items())
    ]
    return ComputationOut(
        id=row.id,
        project=project.name,
        dataset=row.dataset,
        op=row.op,
        column=row.column,
        bins=row.bins,
        query=Query.model_validate(row.query or {}),
        epsilon_spent=float((row.result or {}).get("epsilon") or 0.0),
        round=_round(ctx, row) if ctx is not None else None,
        devices=row.target_devices,
        selector=row.selector,
        state=row.state,
        result=row.result,
        participants=row.participants,
        dropped=[d for d in row.invited if d not in set(row.participants)],
        parties=parties,
        threshold=row.threshold,
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _round(ctx: ServerContext, row: Computation) -> str | None:
    """advertise, shares, masked, unmask: where the protocol is, while it runs here."""
    if row.state != "running":
        return None
    running = ctx.computations.running.get(row.id)
    return str(running.aggregator.phase) if running is not None else None
