"""Single sign-on, from the browser leaving for the provider to a signed-in user.

::

    browser ─GET /auth/oidc/login─> begin(): a flow row (state, nonce, PKCE verifier,
        │                            bound to a random cookie of this browser)
        │ 303 to the provider's authorize endpoint (state, nonce, S256 challenge)
        v
    provider: the user signs in
        │ 303 to /auth/oidc/callback?code&state
        v
    finish(): take() the row (same browser, not expired; deleted: good once)
        -> exchange the code (+ verifier) -> verify the ID token (nonce)
        -> sign_in(): find or create the user by (issuer, subject),
                      re-apply the role map to the managed projects
        -> portal: a session cookie, as a password sign-in makes
           CLI:    a one-time code to the CLI's loopback listener (or shown to paste),
                   redeemed with the CLI's own PKCE verifier for an API token

The CLI's token never travels through the browser: the code the browser
carries is worth nothing without the verifier that only the waiting
``edgefleet login --sso`` process holds. Device sign-in (RFC 8628) is
:mod:`edgefleet.server.auth.oidc_device`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets as pysecrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import secrets
from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.oidc_config import (
    RANK,
    OidcConfig,
    granted_roles,
    managed_projects,
)
from edgefleet.server.auth.oidc_provider import (
    Identity,
    OidcProvider,
    TokenResponse,
    pkce_challenge,
)
from edgefleet.server.auth.oidc_tables import OidcFlow
from edgefleet.server.auth.roles import Role
from edgefleet.server.auth.tables import ApiToken, User
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import NotFound, TooManyRequests, Unauthorized
from edgefleet.server.events import audit
from edgefleet.server.projects.tables import Membership, Project

log = logging.getLogger(__name__)

CALLBACK_PATH = "/auth/oidc/callback"
GRANT_SECONDS = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CliRequest:
    """What ``edgefleet login --sso`` asked for: where to send the code, and its challenge."""

    port: int  # 0: show the code to paste
    state: str
    challenge: str


@dataclass
class SignIn:
    user: User
    created: bool
    groups_missing: bool
    roles: dict[str, str] = field(default_factory=dict)  # project name -> role, after sign-in
    cli: CliRequest | None = None
    next_url: str = "/"
    grant: str | None = None  # the CLI's one-time code


NOT_CONFIGURED = "single sign-on is not configured on this server (edgefleet server --oidc-issuer)"


def configured_provider(ctx: ServerContext) -> OidcProvider:
    """The server's identity provider; 404 where single sign-on is not configured."""
    if ctx.oidc is None:
        raise NotFound(NOT_CONFIGURED)
    return ctx.oidc


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def callback_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}"


# --- the flow ------------------------------------------------------------------------------


async def begin(
    db: AsyncSession,
    provider: OidcProvider,
    *,
    browser: str,
    public_url: str,
    next_url: str = "/",
    cli: CliRequest | None = None,
) -> str:
    """Record a sign-in under way and answer the provider URL to send the browser to."""
    now = await make_room(db, provider.config)
    state, nonce = pysecrets.token_urlsafe(32), pysecrets.token_urlsafe(32)
    verifier = pysecrets.token_urlsafe(64)
    db.add(
        OidcFlow(
            state_hash=digest(state),
            browser_hash=digest(browser),
            nonce=nonce,
            verifier=verifier,
            next_url=next_url,
            kind="cli" if cli else "portal",
            cli_port=cli.port if cli else None,
            cli_state=cli.state if cli else None,
            cli_challenge=cli.challenge if cli else None,
            expires_at=now + timedelta(seconds=provider.config.flow_seconds),
        )
    )
    await db.commit()
    return await provider.authorize_url(callback_url(public_url), state, nonce, verifier)


async def make_room(db: AsyncSession, config: OidcConfig) -> datetime:
    """Forget expired sign-ins; refuse a new one past ``--oidc-max-pending`` (every
    anonymous visit to the sign-in start writes a row)."""
    now = utcnow()
    await db.execute(delete(OidcFlow).where(OidcFlow.expires_at < now))
    pending = await db.scalar(select(func.count()).select_from(OidcFlow))
    if (pending or 0) >= config.max_pending:
        await db.commit()
        raise TooManyRequests(
            "too many sign-ins are under way; try again in a minute", retry_after=60
        )
    return now


async def take(db: AsyncSession, state: str, browser: str | None) -> OidcFlow:
    """The flow ``state`` names, removed so it cannot be finished twice.

    Refused (:class:`Unauthorized`) when unknown or used, expired, or begun in
    another browser: a login-CSRF page cannot make a victim's browser finish a
    sign-in it did not begin."""
    flow = await db.scalar(
        select(OidcFlow).where(
            OidcFlow.state_hash == digest(state or "-"),
            OidcFlow.grant_hash.is_(None),
            OidcFlow.kind != "device",
        )
    )
    if flow is None:
        raise Unauthorized(
            "this sign-in is unknown or was already used (state mismatch): start it again"
        )
    if not browser or not secrets.same(digest(browser), flow.browser_hash):
        raise Unauthorized(
            "this sign-in was started in another browser (or its cookie was lost): start it again"
        )
    await db.delete(flow)
    await db.commit()
    if flow.expires_at <= utcnow():
        raise Unauthorized("this sign-in took too long and expired: start it again")
    return flow


async def finish(
    db: AsyncSession,
    provider: OidcProvider,
    *,
    state: str,
    code: str,
    browser: str | None,
    public_url: str,
    client: str,
) -> SignIn:
    """The provider sent the browser back: check everything, then sign the user in."""
    flow = await take(db, state, browser)
    tokens = await provider.exchange_code(code, callback_url(public_url), flow.verifier)
    identity = await identity_of(provider, tokens, flow.nonce)
    result = await sign_in(db, provider.config, identity, client)
    result.next_url = flow.next_url
    if flow.kind == "cli" and flow.cli_state is not None and flow.cli_challenge is not None:
        result.cli = CliRequest(flow.cli_port or 0, flow.cli_state, flow.cli_challenge)
        result.grant = await _grant(db, result.user, flow.cli_challenge)
    return result


async def identity_of(provider: OidcProvider, tokens: TokenResponse, nonce: str | None) -> Identity:
    """The verified ID token's identity, with userinfo's claims when the groups claim
    is not in the token (some providers keep groups out of ID tokens)."""
    identity = await provider.verify_id_token(tokens.id_token, nonce)
    if provider.config.groups_claim not in identity.claims and tokens.access_token:
        extra = await provider.userinfo(tokens.access_token)
        if extra.get("sub") == identity.subject:  # OIDC Core 5.3.2: else ignore it
            identity.claims = {**extra, **identity.claims}
    return identity


# --- the user ------------------------------------------------------------------------------


def groups_of(claims: dict[str, Any], claim: str) -> list[str] | None:
    """The groups a claim lists (a list, or one string); None when it is absent."""
    value = claims.get(claim)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []


async def sign_in(db: AsyncSession, config: OidcConfig, identity: Identity, client: str) -> SignIn:
    """Find or create the user behind ``identity`` and re-apply the role map."""
    if len(identity.subject) > 255:  # OIDC Core 2: at most 255 ASCII characters
        raise Unauthorized("the ID token's subject is longer than 255 characters")
    user = await db.scalar(
        select(User).where(
            User.external_issuer == identity.issuer, User.external_subject == identity.subject
        )
    )
    created = user is None
    if user is None:
        name = await _free_name(db, identity, config.username_claim)
        user = User(
            id=new_id("u"),
            name=name,
            is_admin=False,
            external_issuer=identity.issuer,
            external_subject=identity.subject,
        )
        db.add(user)
        await db.flush()
        what = f"{name} was created at first sign-in through {identity.issuer}"
        audit.record(db, "user.created", None, what, actor=name)
    if user.disabled:
        await db.commit()
        raise Unauthorized(f"user {user.name!r} is disabled")
    groups = groups_of(identity.claims, config.groups_claim)
    roles = await _apply_roles(db, user, groups or [], config)
    audit.login_succeeded(db, user.name, client)
    await db.commit()
    return SignIn(user=user, created=created, groups_missing=groups is None, roles=roles)


async def _free_name(db: AsyncSession, identity: Identity, claim: str) -> str:
    """A user name from the provider's claims, never one already taken: a local
    ``alice`` is not the provider's ``alice``."""
    raw = ""
    for candidate in (identity.claims.get(claim), identity.claims.get("email"), identity.subject):
        if isinstance(candidate, str) and candidate.strip():
            raw = candidate.strip()
            break
    base = _UNSAFE.sub("-", raw).strip("-._")[:48] or "user"
    if not base[0].isalnum():
        base = f"u{base}"[:48]
    tag = digest(f"{identity.issuer}|{identity.subject}")
    for name in (base, f"{base}-{tag[:6]}", f"{base}-{tag[:12]}"):
        if await db.scalar(select(User.pk).where(User.name == name)) is None:
            return name
    return f"{base[:40]}-{pysecrets.token_hex(6)}"


async def _apply_roles(
    db: AsyncSession, user: User, groups: list[str], config: OidcConfig
) -> dict[str, str]:
    """Make the user's memberships in the managed projects what the groups grant
    (added, changed, removed); answer every membership afterwards, by project name."""
    granted = granted_roles(groups, config.role_map)
    managed = managed_projects(config.role_map)
    projects = {
        ref: project
        for ref in managed
        for project in [
            await db.scalar(select(Project).where(or_(Project.name == ref, Project.id == ref)))
        ]
        if project is not None
    }
    for ref in managed - projects.keys():
        log.warning("--oidc-role-map names project %r, which does not exist", ref)
    held = {
        m.project_pk: m
        for m in await db.scalars(select(Membership).where(Membership.user_pk == user.pk))
    }
    wanted: dict[int, Role | None] = {project.pk: None for project in projects.values()}
    for ref, project in projects.items():  # a project may be named by name and by id
        role, prior = granted.get(ref), wanted[project.pk]
        if role is not None:
            wanted[project.pk] = role if prior is None else min(prior, role, key=RANK.index)
    for project_pk, role in wanted.items():
        membership = held.get(project_pk)
        if role is None and membership is not None:
            await db.delete(membership)
            del held[project_pk]
        elif role is not None and membership is None:
            held[project_pk] = Membership(project_pk=project_pk, user_pk=user.pk, role=role.value)
            db.add(held[project_pk])
        elif role is not None and membership is not None and membership.role != role.value:
            membership.role = role.value
    await db.flush()
    names = dict((await db.execute(select(Project.pk, Project.name))).all())
    return {names[pk]: m.role for pk, m in held.items() if pk in names}


# --- the CLI's token -------------------------------------------------------------------------


async def _grant(db: AsyncSession, user: User, challenge: str) -> str:
    code = pysecrets.token_urlsafe(32)
    db.add(
        OidcFlow(
            state_hash=digest(pysecrets.token_urlsafe(32)),
            browser_hash="",
            nonce="",
            verifier="",
            kind="cli",
            cli_challenge=challenge,
            grant_hash=digest(code),
            user_pk=user.pk,
            expires_at=utcnow() + timedelta(seconds=GRANT_SECONDS),
        )
    )
    await db.commit()
    return code


async def redeem(
    db: AsyncSession, config: OidcConfig, code: str, verifier: str, name: str
) -> tuple[ApiToken, str, User]:
    """The API token for a CLI's one-time code, once, to the holder of its verifier."""
    flow = await db.scalar(select(OidcFlow).where(OidcFlow.grant_hash == digest(code or "-")))
    if flow is None or flow.user_pk is None:
        raise Unauthorized("this sign-in code is unknown or was already used", field="code")
    await db.delete(flow)  # one attempt, right or wrong
    await db.commit()
    if flow.expires_at <= utcnow():
        raise Unauthorized(
            "this sign-in code expired: run 'edgefleet login --sso' again", field="code"
        )
    if not secrets.same(pkce_challenge(verifier), flow.cli_challenge or ""):
        raise Unauthorized("the code verifier does not match this code", field="code_verifier")
    user = await db.get(User, flow.user_pk)
    if user is None or user.disabled:
        raise Unauthorized("this user can no longer sign in", field="code")
    expires: datetime = utcnow() + timedelta(hours=config.cli_token_hours)
    token, secret = await auth_service.create_token(
        db, user, name=name, expires_at=expires, actor=user.name
    )
    return token, secret, user
