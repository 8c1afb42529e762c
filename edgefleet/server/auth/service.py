"""Users, API tokens and the first-start bootstrap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth import freshness, secrets
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.passwords import hash_password, verify_password
from edgefleet.server.auth.roles import Role
from edgefleet.server.auth.tables import ApiToken, User
from edgefleet.server.db.base import new_id, utcnow
from edgefleet.server.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from edgefleet.server.events import audit
from edgefleet.server.limits import Limits
from edgefleet.server.projects.tables import Membership, Project

log = logging.getLogger(__name__)

ADMIN = "admin"
DEFAULT_PROJECT = "default"
SESSION_TTL = timedelta(hours=12)


@dataclass
class Bootstrap:
    admin_created: bool
    admin_token: str | None


async def bootstrap(db: AsyncSession, admin_token: str | None) -> Bootstrap:
    """Create ``admin`` and project ``default`` on first start.

    With ``admin_token`` set, that exact string is (or becomes) a valid admin
    token on every start, so automation can rely on it. Otherwise a token is
    generated once, on first start, and returned for printing.
    """
    admin = await db.scalar(select(User).where(User.name == ADMIN))
    created = admin is None
    if admin is None:
        admin = User(id=new_id("u"), name=ADMIN, is_admin=True)
        db.add(admin)
        await db.flush()
    project = await db.scalar(select(Project).where(Project.name == DEFAULT_PROJECT))
    if project is None:
        project = Project(
            id=new_id("p"), name=DEFAULT_PROJECT, description="created on first start"
        )
        db.add(project)
        await db.flush()
        db.add(Membership(project_pk=project.pk, user_pk=admin.pk, role=Role.OWNER.value))
    printed: str | None = None
    if admin_token:
        if len(admin_token) < 16:
            raise Invalid(
                "EDGEFLEET_ADMIN_TOKEN must be at least 16 characters", field="admin_token"
            )
        existing = await db.scalar(
            select(ApiToken).where(ApiToken.token_hash == secrets.digest(admin_token))
        )
        if existing is None:
            db.add(_token_row(admin.pk, admin_token, "bootstrap (EDGEFLEET_ADMIN_TOKEN)", None))
        elif existing.revoked_at is not None or existing.user_pk != admin.pk:
            existing.revoked_at = None
            existing.user_pk = admin.pk
    elif created:
        printed = secrets.generate(secrets.TOKEN_PREFIX)
        db.add(_token_row(admin.pk, printed, "bootstrap", None))
    await db.commit()
    return Bootstrap(admin_created=created, admin_token=printed)


def _token_row(
    user_pk: int, secret: str, name: str, expires_at: datetime | None, kind: str = "api"
) -> ApiToken:
    return ApiToken(
        id=new_id("t"),
        user_pk=user_pk,
        name=name,
        kind=kind,
        token_hash=secrets.digest(secret),
        prefix=secrets.display_prefix(secret),
        expires_at=expires_at,
    )


async def caller_for(db: AsyncSession, user: User, token: ApiToken | None, via: str) -> Caller:
    rows = await db.execute(
        select(Membership.project_pk, Membership.role).where(Membership.user_pk == user.pk)
    )
    return _caller(user, token, via, rows.all())


def _caller(
    user: User,
    token: ApiToken | None,
    via: str,
    memberships: Iterable[tuple[int | None, str | None]],
) -> Caller:
    return Caller(
        user_pk=user.pk,
        user_id=user.id,
        name=user.name,
        is_admin=user.is_admin,
        roles={pk: Role(role) for pk, role in memberships if pk is not None and role is not None},
        token_id=token.id if token else None,
        via=via,
    )


async def authenticate(
    db: AsyncSession, secret: str, via: str = "token", kind: str | None = None
) -> Caller:
    """The caller a secret stands for. ``kind``: which kind of token is acceptable
    here (``None``: API tokens and portal sessions, never app-scoped cookies).

    The token, its user and the user's memberships come in one statement (a
    row per membership): every API request starts here, and each statement
    waits a turn of the event loop, which a fan-out landing on 10,000
    devices keeps busy (issue 16)."""
    rows = (
        await db.execute(
            select(ApiToken, User, Membership.project_pk, Membership.role)
            .join(User, User.pk == ApiToken.user_pk)
            .outerjoin(Membership, Membership.user_pk == User.pk)
            .where(ApiToken.token_hash == secrets.digest(secret))
        )
    ).all()
    if not rows:
        raise Unauthorized("invalid token")
    token, user = rows[0][0], rows[0][1]
    now = utcnow()
    if kind is None and token.kind not in ("api", "session"):
        raise Unauthorized("invalid token")
    if kind is not None and token.kind != kind:
        raise Unauthorized("invalid token")
    if token.revoked_at is not None:
        raise Unauthorized("this token was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized(f"this token expired at {token.expires_at.isoformat()}")
    if user.disabled:
        raise Unauthorized(f"user {user.name!r} is disabled")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        _touch_later(db, token.pk, now)
    return _caller(user, token, via, ((pk, role) for _, _, pk, role in rows))


_touching: set[asyncio.Task[None]] = set()


def _touch_later(db: AsyncSession, token_pk: int, now: datetime) -> None:
    """Note when a token was last used, off the request's path: on SQLite that
    write queues behind the one writer (a presence flush of 10,000 devices,
    say), and a read must not wait seconds for it. Best effort by design."""
    bind = db.bind

    async def touch() -> None:
        async with AsyncSession(bind) as session:
            await session.execute(
                update(ApiToken).where(ApiToken.pk == token_pk).values(last_used_at=now)
            )
            await session.commit()

    task = asyncio.ensure_future(touch())
    _touching.add(task)
    task.add_done_callback(_touched)


def _touched(task: asyncio.Task[None]) -> None:
    _touching.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("noting a token's last use failed: %s", task.exception())


async def authenticate_session(
    db: AsyncSession, secret: str, kind: str = "session"
) -> Caller | None:
    try:
        return await authenticate(db, secret, via="cookie", kind=kind)
    except Unauthorized:
        return None


# --- users ---------------------------------------------------------------------------


async def find_user(db: AsyncSession, ref: str) -> User:
    user = await db.scalar(select(User).where((User.id == ref) | (User.name == ref)))
    if user is None:
        raise NotFound(f"user {ref!r} not found")
    return user


async def create_user(
    db: AsyncSession, name: str, *, password: str | None, is_admin: bool, actor: str | None = None
) -> User:
    if await db.scalar(select(User.pk).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists", field="name")
    user = User(
        id=new_id("u"),
        name=name,
        is_admin=is_admin,
        password_hash=await asyncio.to_thread(hash_password, password) if password else None,
    )
    db.add(user)
    audit.record(db, "user.created", None, f"{actor} created user {name}", actor=actor)
    await db.commit()
    return user


async def set_password(
    db: AsyncSession,
    caller: Caller,
    user: User,
    password: str,
    current_password: str | None,
) -> int:
    """Set ``user``'s password; answer how many portal sessions were ended.

    Changing one's own password needs the current one (when there is one): a
    token or session left open on a shared machine must not be enough to lock
    its owner out. Administrators reset other users' passwords without it.
    The user's portal sessions (and app-host cookies) other than the caller's
    own end, so a thief signed in with the old password is thrown out; API
    tokens are untouched (revoke them separately)."""
    if user.external_subject is not None:
        raise Invalid(
            f"{user.name} signs in through single sign-on; a local password is not allowed",
            field="password",
        )
    own = user.pk == caller.user_pk
    if own and user.password_hash is not None:
        if not current_password:
            raise Invalid(
                "changing your own password needs your current one", field="current_password"
            )
        if not await asyncio.to_thread(verify_password, user.password_hash, current_password):
            raise Forbidden("the current password is wrong", field="current_password")
    user.password_hash = await asyncio.to_thread(hash_password, password)
    what = "changed their password" if own else f"reset the password of {user.name}"
    audit.record(db, "user.password_changed", None, f"{caller.name} {what}", actor=caller.name)
    ended = await db.execute(
        update(ApiToken)
        .where(
            ApiToken.user_pk == user.pk,
            ApiToken.kind != "api",
            ApiToken.revoked_at.is_(None),
            ApiToken.id != (caller.token_id or "") if own else true(),
        )
        .values(revoked_at=utcnow())
    )
    freshness.mark(db, user.pk)  # the ended sessions' streams close at once
    await db.commit()
    return int(getattr(ended, "rowcount", 0) or 0)


async def check_password(
    db: AsyncSession, limits: Limits, name: str, password: str, client: str
) -> User:
    """Sign-in with a password, from ``client`` (its address), throttled.

    Each attempt spends one token of the client's bucket and one of the
    username's (existing or not) and a success gives both back, so only
    failures count: past ``login_failures_per_ip`` or
    ``login_failures_per_user`` a minute, :class:`TooManyRequests` with the
    seconds to wait, before any hashing. The hash is checked in a worker
    thread, against a dummy when there is no such user, so the event loop
    never stalls and unknown users answer as slowly as known ones."""
    user_key = name[:256]
    waits = [
        wait
        for wait in (
            limits.login_per_ip.retry_after(client),
            limits.login_per_user.retry_after(user_key),
        )
        if wait is not None
    ]
    if waits:
        wait = max(waits)
        raise TooManyRequests(
            f"too many failed sign-ins from this address or for this account; "
            f"try again in {wait} s",
            field="username",
            retry_after=wait,
        )
    limits.login_per_ip.spend(client)
    limits.login_per_user.spend(user_key)
    user = await db.scalar(select(User).where(User.name == name))
    stored = user.password_hash if user is not None and not user.disabled else None
    matched = await limits.hash(lambda: verify_password(stored, password))  # even for no user
    if user is not None and user.password_hash is None and user.external_subject is not None:
        await audit.login_failed(db, name, client)
        raise Unauthorized(
            f"{name} signs in through single sign-on ('Sign in with your institution' or "
            "'edgefleet login --sso') and has no password here"
        )
    if user is None or not matched:
        await audit.login_failed(db, name, client)
        raise Unauthorized("wrong username or password")
    audit.login_succeeded(db, user.name, client)
    limits.login_per_ip.refund(client)
    limits.login_per_user.refund(user_key)
    return user


# --- tokens --------------------------------------------------------------------------


async def create_token(
    db: AsyncSession,
    user: User,
    *,
    name: str,
    expires_at: datetime | None,
    kind: str = "api",
    actor: str | None = None,
) -> tuple[ApiToken, str]:
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at is in the past", field="expires_at")
    secret = secrets.generate(secrets.TOKEN_PREFIX)
    token = _token_row(user.pk, secret, name, expires_at, kind)
    db.add(token)
    if kind == "api":
        what = f"API token {token.prefix}… ({name or 'unnamed'}) for {user.name}"
        audit.record(db, "token.created", None, what, actor=actor or user.name)
    await db.commit()
    return token, secret


async def create_session(db: AsyncSession, user: User, kind: str = "session") -> str:
    """A short-lived token for a cookie: the portal's (``session``) or one app
    host's (``app:<route>``), which is good for nothing else."""
    _, secret = await create_token(
        db,
        user,
        name="portal session" if kind == "session" else kind,
        expires_at=utcnow() + SESSION_TTL,
        kind=kind,
    )
    return secret


async def revoke_secret(db: AsyncSession, secret: str) -> None:
    token = await db.scalar(select(ApiToken).where(ApiToken.token_hash == secrets.digest(secret)))
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        await db.commit()


async def list_tokens(db: AsyncSession, user_pk: int | None) -> list[tuple[ApiToken, str]]:
    query = select(ApiToken, User.name).join(User, User.pk == ApiToken.user_pk)
    if user_pk is not None:
        query = query.where(ApiToken.user_pk == user_pk)
    query = query.where(ApiToken.kind == "api").order_by(ApiToken.pk)
    return [(token, user) for token, user in (await db.execute(query)).all()]


async def revoke_token(db: AsyncSession, caller: Caller, token_id: str) -> ApiToken:
    token = await db.scalar(select(ApiToken).where(ApiToken.id == token_id))
    if token is None or (not caller.is_admin and token.user_pk != caller.user_pk):
        raise NotFound(f"token {token_id!r} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        what = f"{caller.name} revoked API token {token.prefix}…"
        audit.record(db, "token.revoked", None, what, actor=caller.name, data={"token": token.id})
        await db.commit()
    return token
