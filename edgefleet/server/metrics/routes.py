"""``GET /metrics`` at the server root (SPEC), for Prometheus.

Who may scrape: an administrator's API token, or the dedicated scrape token
``--metrics-token`` (compared in constant time). Anyone else is refused:
no or a bad credential 401, a signed-in non-administrator 403. The labels
name every project, which only administrators may list.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from edgefleet.server.auth import secrets
from edgefleet.server.auth import service as auth_service
from edgefleet.server.deps import Ctx, Db, bearer_token
from edgefleet.server.errors import Forbidden, Unauthorized
from edgefleet.server.metrics.fleet import FleetCache
from edgefleet.server.metrics.middleware import HttpMetrics, RouteTemplates
from edgefleet.server.metrics.registry import CONTENT_TYPE, ServerMetrics
from edgefleet.server.settings import ServerSettings

router = APIRouter(tags=["server"])


async def _allow_scrape(request: Request, ctx: Ctx, db: Db) -> None:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(
            "authentication required: send 'Authorization: Bearer <admin or metrics token>'"
        )
    expected = ctx.settings.metrics_token
    if expected is not None and secrets.same(token, expected.get_secret_value()):
        return
    caller = await auth_service.authenticate(db, token)  # 401 when it is no token at all
    if not caller.is_admin:
        raise Forbidden("only administrators or the --metrics-token may read /metrics")


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request, ctx: Ctx, db: Db) -> Response:
    await _allow_scrape(request, ctx, db)
    state = request.app.state
    fleet = await state.metrics_fleet.get(ctx.sessions)
    body = state.metrics.render(fleet, ctx.hub.counts())
    return Response(body, media_type=CONTENT_TYPE)


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Mount ``/metrics`` and the request-measuring middleware (call it last, so
    the middleware is outermost and sees requests the others refuse)."""
    server_metrics = ServerMetrics(settings.replica_id)
    app.state.metrics = server_metrics
    app.state.metrics_fleet = FleetCache(settings.metrics_cache_seconds)
    app.include_router(router)
    app.add_middleware(
        HttpMetrics,
        metrics=server_metrics,
        lag_interval=settings.metrics_lag_interval,
        templates=RouteTemplates(app),
    )
