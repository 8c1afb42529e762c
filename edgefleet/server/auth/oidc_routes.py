"""The API side of single sign-on: what a CLI needs to know, and where it
redeems its one-time code for an API token. The browser side (sign-in,
callback) is ``server/portal/oidc.py``; the flow is drawn in
:mod:`edgefleet.server.auth.oidc_service`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from edgefleet.server.auth import oidc_device, oidc_service
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.schemas import Input, Output, Timestamp

router = APIRouter(tags=["users and tokens"])


class OidcInfo(Output):
    enabled: bool
    issuer: str | None = None
    login_url: str | None = Field(None, description="the portal's sign-in start")
    cli_url: str | None = Field(
        None,
        description="where 'edgefleet login --sso' sends the browser (with port, "
        "challenge and state)",
    )
    groups_claim: str | None = None
    device_flow: bool = Field(
        False, description="the provider offers device sign-in (RFC 8628): POST /auth/oidc/device"
    )


class CliTokenIn(Input):
    code: str = Field(min_length=16, max_length=256, description="the one-time sign-in code")
    code_verifier: str = Field(
        min_length=43, max_length=128, description="the PKCE verifier whose S256 was the challenge"
    )
    name: str = Field("edgefleet login --sso", max_length=128, description="the token's name")


class CliTokenOut(Output):
    id: str
    token: str = Field(description="the API token (shown once)")
    user: str
    expires_at: Timestamp | None


@router.get("/auth/oidc", response_model=OidcInfo)
async def oidc_info(ctx: Ctx) -> OidcInfo:
    """Whether single sign-on is on, and where it starts (no credentials needed)."""
    if ctx.oidc is None:
        return OidcInfo(enabled=False)
    base = ctx.settings.resolved_public_url()
    return OidcInfo(
        enabled=True,
        issuer=ctx.oidc.config.issuer,
        login_url=f"{base}/auth/oidc/login",
        cli_url=f"{base}/auth/oidc/cli",
        groups_claim=ctx.oidc.config.groups_claim,
        device_flow=(await ctx.oidc.discovery()).device_authorization_endpoint is not None,
    )


@router.post("/auth/oidc/token", status_code=201, response_model=CliTokenOut)
async def cli_token(body: CliTokenIn, ctx: Ctx, db: Db) -> CliTokenOut:
    """Redeem the one-time code of ``edgefleet login --sso`` (with its PKCE verifier)
    for an API token. A code is good for one attempt, for two minutes."""
    config = oidc_service.configured_provider(ctx).config
    token, secret, user = await oidc_service.redeem(
        db, config, body.code, body.code_verifier, body.name
    )
    return CliTokenOut(id=token.id, token=secret, user=user.name, expires_at=token.expires_at)


class DeviceOut(Output):
    handle: str = Field(description="secret: poll POST /auth/oidc/device/token with it")
    user_code: str = Field(description="what the user types in at verification_uri")
    verification_uri: str
    verification_uri_complete: str | None = None
    interval: int = Field(description="seconds between polls")
    expires_in: int


class DevicePollIn(Input):
    handle: str = Field(min_length=16, max_length=256)
    name: str = Field("edgefleet login --sso", max_length=128, description="the token's name")


class DevicePending(Output):
    status: str = Field(
        description="authorization_pending (poll again after the interval) or slow_down "
        "(add 5 s to the interval, RFC 8628)"
    )


@router.post("/auth/oidc/device", status_code=201, response_model=DeviceOut)
async def device_start(ctx: Ctx, db: Db) -> DeviceOut:
    """Begin a device sign-in (RFC 8628) where the provider offers one: the user
    opens ``verification_uri`` anywhere and types ``user_code``."""
    handle, start = await oidc_device.begin_device(db, oidc_service.configured_provider(ctx))
    return DeviceOut(
        handle=handle,
        user_code=start.user_code,
        verification_uri=start.verification_uri,
        verification_uri_complete=start.verification_uri_complete,
        interval=max(start.interval, 1),
        expires_in=start.expires_in,
    )


@router.post(
    "/auth/oidc/device/token",
    status_code=201,
    response_model=CliTokenOut,
    responses={202: {"model": DevicePending, "description": "not approved yet"}},
)
async def device_token(
    body: DevicePollIn, request: Request, ctx: Ctx, db: Db
) -> CliTokenOut | JSONResponse:
    """Poll a device sign-in: 202 until the user approves, then 201 with the API token
    (once). Denied or expired: 401."""
    oidc = oidc_service.configured_provider(ctx)
    client = request.client.host if request.client else "unknown"
    answer = await oidc_device.poll_device(db, oidc, body.handle, client, body.name)
    if isinstance(answer, str):
        return JSONResponse(DevicePending(status=answer).model_dump(), status_code=202)
    token, secret, user = answer
    return CliTokenOut(id=token.id, token=secret, user=user.name, expires_at=token.expires_at)
