"""Device sign-in (RFC 8628), for ``edgefleet login --sso`` on a machine with no
browser, where the provider offers it (``device_authorization_endpoint`` in
its discovery document)::

    CLI --POST /auth/oidc/device--> begin_device(): the provider's device code,
                                     kept here under a random handle
        <-- handle (secret), user code, verification URI
    the user opens the URI anywhere and types the user code
    CLI --POST /auth/oidc/device/token {handle}--> poll_device(): ask the provider
        <-- 202 pending ... then 201 the API token (the handle ends)

The ID token comes straight from the provider's token endpoint for our device
code and is verified like any other (this flow has no nonce).
"""

from __future__ import annotations

import secrets as pysecrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.oidc_provider import DeviceStart, OidcProvider
from edgefleet.server.auth.oidc_service import digest, identity_of, make_room, sign_in
from edgefleet.server.auth.oidc_tables import OidcFlow
from edgefleet.server.auth.tables import ApiToken, User
from edgefleet.server.db.base import utcnow
from edgefleet.server.errors import Unauthorized


async def begin_device(db: AsyncSession, provider: OidcProvider) -> tuple[str, DeviceStart]:
    """Ask the provider for a device code; keep it under a new handle for the CLI."""
    await make_room(db, provider.config)
    start = await provider.start_device()
    handle = pysecrets.token_urlsafe(32)
    seconds = min(start.expires_in, provider.config.flow_seconds)
    db.add(
        OidcFlow(
            state_hash=digest(handle),
            browser_hash="",
            nonce="",
            verifier=start.device_code,
            kind="device",
            expires_at=utcnow() + timedelta(seconds=seconds),
        )
    )
    await db.commit()
    return handle, start


async def poll_device(
    db: AsyncSession, provider: OidcProvider, handle: str, client: str, name: str
) -> tuple[ApiToken, str, User] | str:
    """Ask the provider once: the API token when the user approved, else the
    provider's ``authorization_pending`` / ``slow_down``."""
    flow = await db.scalar(
        select(OidcFlow).where(OidcFlow.state_hash == digest(handle), OidcFlow.kind == "device")
    )
    if flow is None:
        raise Unauthorized("this device sign-in is unknown or finished", field="handle")
    if flow.expires_at <= utcnow():
        await db.delete(flow)
        await db.commit()
        raise Unauthorized("this device sign-in expired: start it again", field="handle")
    try:
        answer = await provider.poll_device(flow.verifier)
    except Unauthorized:
        await db.delete(flow)
        await db.commit()
        raise
    if isinstance(answer, str):
        return answer
    await db.delete(flow)
    await db.commit()
    identity = await identity_of(provider, answer, None)
    user = (await sign_in(db, provider.config, identity, client)).user
    expires = utcnow() + timedelta(hours=provider.config.cli_token_hours)
    token, secret = await auth_service.create_token(
        db, user, name=name, expires_at=expires, actor=user.name
    )
    return token, secret, user
