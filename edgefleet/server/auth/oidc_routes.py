"""The API side of single sign-on: what a CLI needs to know, and where it
redeems its one-time code for an API token. The browser side (sign-in,
callback) is ``server/portal/oidc.py``; the flow is drawn in
:mod:`edgefleet.server.auth.oidc_service`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from pydantic import Field

from edgefleet.server.auth import oidc_service
from edgefleet.server.auth.oidc_config import OidcConfig
from edgefleet.server.auth.oidc_provider import OidcProvider
from edgefleet.server.context import ServerContext
from edgefleet.server.deps import Ctx, Db
from edgefleet.server.errors import NotFound
from edgefleet.server.schemas import Input, Output, Timestamp

router = APIRouter(tags=["users and tokens"])

NOT_CONFIGURED = "single sign-on is not configured on this server (edgefleet server --oidc-issuer)"


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


def provider(ctx: ServerContext) -> OidcProvider:
    if ctx.oidc is None:
        raise NotFound(NOT_CONFIGURED)
    return ctx.oidc


async def start(ctx: ServerContext) -> Callable[[], Awaitable[None]] | None:
    """Start hook: the provider client, when ``--oidc-issuer`` is set. Discovery
    waits for the first sign-in, so a provider that is down does not stop the server."""
    config = OidcConfig.from_settings(ctx.settings)
    if config is None:
        return None
    ctx.oidc = OidcProvider(config)
    return ctx.oidc.close


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
    )


@router.post("/auth/oidc/token", status_code=201, response_model=CliTokenOut)
async def cli_token(body: CliTokenIn, ctx: Ctx, db: Db) -> CliTokenOut:
    """Redeem the one-time code of ``edgefleet login --sso`` (with its PKCE verifier)
    for an API token. A code is good for one attempt, for two minutes."""
    config = provider(ctx).config
    token, secret, user = await oidc_service.redeem(
        db, config, body.code, body.code_verifier, body.name
    )
    return CliTokenOut(id=token.id, token=secret, user=user.name, expires_at=token.expires_at)
