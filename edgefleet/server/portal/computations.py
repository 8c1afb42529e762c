"""The Computations and Datasets pages (federated analytics, issue 15).

Computations: the audit of every request with a form to ask a new one (op,
columns, filters, groups, quantiles, epsilon), and one page per computation
that follows its rounds live (an htmx fragment polled while it runs) and
shows the released result, participants, dropped devices with their reasons,
and the epsilon spent. Datasets: what each device offers and its owner's
policy (budget, differencing rule, epsilon spent of its budget), never a value.

Both read and write through the same services as ``/api/v1/computations`` and
``/api/v1/datasets``, so the pages cannot show or start what the API would refuse.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from edgefleet.fed.analytics.decode import Result
from edgefleet.fed.analytics.query import parse_condition, scalar
from edgefleet.fed.stats import TASK_OPS
from edgefleet.server.auth.roles import Permission
from edgefleet.server.computations import datasets, service
from edgefleet.server.computations.schemas import ComputationIn
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import ApiError, Invalid
from edgefleet.server.pagination import PageParams
from edgefleet.server.portal import web
from edgefleet.server.portal.web import CheckedForm, Viewer, ViewerDep

router = web.page_router()

PAGE = 100


def _numbers(text: str, name: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise Invalid(f"{name}: expected comma-separated numbers", field=name) from None


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _bounds(text: str) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for line in filter(None, (line.strip() for line in text.splitlines())):
        column, _, span = line.partition("=")
        lo, _, hi = span.partition(":")
        try:
            out[column.strip()] = (float(lo), float(hi))
        except ValueError:
            raise Invalid(f"bounds: {line!r}: expected COLUMN=LO:HI", field="bounds") from None
    return out


def _request(values: dict[str, Any]) -> ComputationIn:
    """The API's request model from the form; its errors name the field."""
    try:
        where = [parse_condition(line) for line in values["where"].splitlines() if line.strip()]
    except ValueError as exc:
        raise Invalid(f"where: {exc}", field="where") from None
    by_devices = values["target"] == "devices"
    return web.build(
        ComputationIn,
        project=values["project"] or None,
        dataset=values["dataset"],
        op=values["op"],
        column=values["column"] or None,
        columns=_list(values["columns"]),
        where=where,
        group_by=values["group_by"] or None,
        groups=[scalar(g) for g in _list(values["groups"])],
        bins=_numbers(values["bins"], "bins") or None,
        quantiles=_numbers(values["quantiles"], "quantiles"),
        epsilon=float(values["epsilon"]) if values["epsilon"] else None,
        bounds=_bounds(values["bounds"]),
        devices=_list(values["devices"]) if by_devices else None,
        selector=None if by_devices else values["selector"],
    )


FIELDS = (
    "project", "dataset", "op", "column", "columns", "where", "group_by", "groups", "bins",
    "quantiles", "epsilon", "bounds", "target", "devices", "selector",
)  # fmt: skip


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: web.field(form, name) for name in FIELDS}
    for multiline in ("where", "bounds"):
        text = form.get(multiline)
        values[multiline] = text if isinstance(text, str) else ""
    return values


async def _page(
    request: Request, viewer: Viewer, db: Db, ctx: Ctx, values: dict[str, Any], error: str = ""
) -> Response:
    listed = await service.listing(db, viewer.caller, PageParams(limit=PAGE, after=0))
    items = [await service.output(db, row, ctx) for row in reversed(listed.items)]
    context = {
        "computations": items,
        "ops": TASK_OPS,
        "values": values,
        "error": error,
        "can_compute": viewer.can_any(Permission.COMPUTE),
    }
    return web.render(request, "computations.html", context, status=200)


@router.get("/computations")
async def computations_page(request: Request, viewer: ViewerDep, db: Db, ctx: Ctx) -> Response:
    return await _page(request, viewer, db, ctx, {"target": "selector", "op": "mean"})


@router.post("/computations")
async def ask(request: Request, viewer: ViewerDep, form: CheckedForm, db: Db, ctx: Ctx) -> Response:
    values = _values(form)
    try:
        row = await service.create(ctx, db, viewer.caller, _request(values))
    except ApiError as exc:
        web.refused(exc)
        return await _page(request, viewer, db, ctx, values, exc.message)
    return web.redirect(f"/computations/{row.id}")


async def _one(db: Db, viewer: Viewer, ctx: Ctx, ref: str) -> dict[str, Any]:
    computation = await service.output(db, await service.find(db, viewer.caller, ref), ctx)
    result = Result.model_validate(computation.result) if computation.result else None
    return {"c": computation, "result": result}


@router.get("/computations/{computation}")
async def computation_page(
    request: Request, computation: str, viewer: ViewerDep, db: Db, ctx: Ctx
) -> Response:
    return web.render(request, "computation.html", await _one(db, viewer, ctx, computation))


@router.get("/portal/fragments/computations/{computation}")
async def computation_fragment(
    request: Request, computation: str, viewer: ViewerDep, db: Db, ctx: Ctx
) -> Response:
    context = await _one(db, viewer, ctx, computation)
    # 286: htmx stops polling once the computation is over (and still swaps this in)
    status = 200 if context["c"].state == "running" else 286
    return web.render(request, "fragments/computation.html", context, status=status)


@router.get("/datasets")
async def datasets_page(request: Request, viewer: ViewerDep, db: Db) -> Response:
    listed = await datasets.listing(db, viewer.caller, PageParams(limit=500, after=0))
    return web.render(request, "datasets.html", {"datasets": listed.items})
