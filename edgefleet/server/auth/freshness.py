"""Long-lived streams end when their caller's rights do.

A route checks the caller once, when a stream opens; an event stream, a log
follow, an exec session, a port-forward or a proxied WebSocket may then run
for hours. Without this module they would outlive the revocation of their
token, the disabling of their user, or the loss of the project membership
they were opened under. Routes need no changes: an ASGI middleware
(:class:`FreshStreams`) notes the credential of every user request, and a
guard (:class:`StreamGuard`) re-judges the open ones::

    request ──> FreshStreams ──> the route (authenticates as usual)
                  │ watch(credential digests, the request's task)
                  v
               StreamGuard: every ``stream_recheck_interval`` s, and at once when
                  │  a commit touched tokens, users or memberships (``ef.auth.changed``
                  │  on the bus, so every replica hears it), one query for all open
                  │  requests: token revoked/expired/deleted? user disabled? the
                  │  user's memberships or admin flag changed since the stream opened?
                  v
               the request's task is cancelled: a WebSocket closes with 1008 and the
               reason, an HTTP response ends (an SSE stream gets a last ``error`` event)

Changes are noticed without touching the code that makes them: a SQLAlchemy
listener sees ``ApiToken``, ``User`` and ``Membership`` rows flushed in this
server's sessions and announces their users after the commit; bulk updates
say so with :func:`mark`. The periodic check is what counts (it reads the
database every replica shares, so a lost bus message only delays a close);
the announcement only makes it prompt.

A membership change closes the user's streams whatever it was (a project
gained or lost, a role changed): a stream's rights were fixed when it opened,
and reopening is cheap. Device credentials (the agents' connection and data
uploads) are not watched here: deleting a device revokes its connection in
the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, attributes

from edgefleet.server.auth import secrets
from edgefleet.server.auth.tables import ApiToken, User
from edgefleet.server.bus.base import BusMessage
from edgefleet.server.bus.envelopes import EnvelopeError, RightsChanged, read_rights
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.projects.tables import Membership

log = logging.getLogger(__name__)

SUBJECT = "ef.auth.changed"
POLICY_VIOLATION = 1008  # RFC 6455: the close code for "your rights are gone"
UNWATCHED_PREFIXES = (secrets.DEVICE_PREFIX, secrets.KEY_PREFIX)
_INFO_KEY = "edgefleet.auth_changed"

Fingerprint = tuple[bool, frozenset[tuple[int, str]]]


@dataclass(frozen=True)
class TokenState:
    """What the database says about one credential, at one check."""

    user_pk: int
    revoked: bool
    expires_at: datetime | None
    disabled: bool


@dataclass(eq=False)
class Watched:
    """One open request and the credentials it may be using (bearer, or cookies)."""

    digests: tuple[str, ...]
    task: asyncio.Task[Any]
    registered_at: float = field(default_factory=time.monotonic)
    baseline: Fingerprint | None = None
    reason: str | None = None
    acted: bool = False  # it committed a rights change itself: see StreamGuard._made_it


def verdict(
    watched: Watched,
    states: dict[str, TokenState],
    fingerprints: dict[int, Fingerprint],
    changed_at: dict[int, float],
    now: datetime,
) -> str | None:
    """Why ``watched`` must close, or None (and its baseline is set). Pure.

    Alive while one of its credentials is (a request with several cookies used
    one of them); that credential's user must keep the memberships the stream
    saw at its first check, and none may have changed between its opening and
    that check. A request that committed a rights change itself is not
    closed: it acted knowing (``DELETE /tokens/{id}`` of its own token answers
    200, where a check landing before its answer turned it into a 401); the
    change holds for every request after it."""
    if watched.acted:
        return None
    reasons = []
    alive: TokenState | None = None
    for digest in watched.digests:
        state = states.get(digest)
        if state is None:
            reasons.append("the token was deleted")
        elif state.revoked:
            reasons.append("the token was revoked")
        elif state.expires_at is not None and state.expires_at <= now:
            reasons.append("the token expired")
        elif state.disabled:
            reasons.append("the user was disabled")
        else:
            alive = state
            break
    if alive is None:
        return reasons[0] if reasons else "no credentials"
    current = fingerprints.get(alive.user_pk, (False, frozenset()))
    if watched.baseline is None:
        if changed_at.get(alive.user_pk, float("-inf")) >= watched.registered_at:
            return "the user's project memberships changed"
        watched.baseline = current
        return None
    if current != watched.baseline:
        return "the user's project memberships changed"
    return None


class StreamGuard:
    """Knows every open user request and closes those whose rights are gone."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.watched: set[Watched] = set()
        self._changed_at: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._ctx: ServerContext | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._pending: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[set[int]], None]] = []

    @property
    def running(self) -> bool:
        return self._ctx is not None

    async def start(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._wake = asyncio.Event()
        self._subscription = await ctx.bus.subscribe(SUBJECT, self._on_message)
        event.listen(Session, "after_flush", self._after_flush)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)
        self._loop_task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._ctx is None:
            return
        for name, fn in (
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        ):
            event.remove(Session, name, fn)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        self._ctx = None

    # -- requests ------------------------------------------------------------------------

    def watch(self, digests: tuple[str, ...], task: asyncio.Task[Any]) -> Watched:
        watched = Watched(digests, task)
        self.watched.add(watched)
        return watched

    def forget(self, watched: Watched) -> None:
        self.watched.discard(watched)

    # -- changes -------------------------------------------------------------------------

    def on_change(self, listener: Callable[[set[int]], None]) -> None:
        """Also tell ``listener`` the users of every change, as it is noted (what
        remembers rights: the proxy's grants)."""
        self._listeners.append(listener)

    def changed(self, users: Iterable[int], memberships: bool) -> None:
        """Note a committed change of these users' rights and re-check now."""
        users = set(users)
        for listener in self._listeners:
            listener(users)
        if memberships:
            stamp = time.monotonic()
            for user in users:
                self._changed_at[user] = stamp
        self._wake.set()

    def _made_it(self, task: asyncio.Task[Any] | None) -> None:
        """The request that committed a change acted knowing it, and is not
        closed for it (a project's creator, made its owner; a token revoking
        itself): see :func:`verdict`."""
        for watched in self.watched:
            if task is not None and watched.task is task:
                watched.acted = True

    async def _on_message(self, message: BusMessage) -> None:
        try:
            change = read_rights(message.data)
        except EnvelopeError as exc:
            log.warning("ignored a rights change: %s", exc)
            return
        # Our own commit was noted at commit time; stamping it again when the bus
        # delivers it would close requests the user made after the change.
        if self._ctx is not None and change.replica == self._ctx.replica:
            return
        self.changed(change.users, change.memberships)

    def _owned(self, session: Session) -> bool:
        return self._ctx is not None and session.bind is self._ctx.engine.sync_engine

    def _after_flush(self, session: Session, _flush: Any) -> None:
        if not self._owned(session):
            return
        for obj in (*session.dirty, *session.deleted, *session.new):
            if isinstance(obj, Membership):
                mark(session, obj.user_pk, memberships=True)
            elif isinstance(obj, User) and obj not in session.new:
                admin = attributes.get_history(obj, "is_admin").has_changes()
                mark(session, obj.pk, memberships=admin or obj in session.deleted)
            elif isinstance(obj, ApiToken) and obj not in session.new:
                mark(session, obj.user_pk)

    def _after_commit(self, session: Session) -> None:
        found = session.info.pop(_INFO_KEY, None)
        if not found or not self._owned(session):
            return
        users, memberships = found
        self.changed(users, memberships)
        self._made_it(asyncio.current_task())
        ctx = self._ctx
        assert ctx is not None
        data = RightsChanged(
            users=sorted(users), memberships=memberships, replica=ctx.replica
        ).encode()
        task = asyncio.get_running_loop().create_task(ctx.bus.publish(SUBJECT, data))
        self._pending.add(task)
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("announcing a rights change on the bus failed: %s", task.exception())

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_INFO_KEY, None)

    # -- the check -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.check()
            except Exception:  # a failed check must not end the guard; the next one retries
                log.exception("re-checking open streams failed")

    async def check(self) -> int:
        """Re-judge every open request in one pass; answer how many were closed."""
        assert self._ctx is not None
        open_now = [w for w in self.watched if w.reason is None and not w.task.done()]
        if not open_now:
            return 0
        digests = {d for w in open_now for d in w.digests}
        async with self._ctx.session() as db:
            states = await _token_states(db, digests)
            fingerprints = await _fingerprints(db, {s.user_pk for s in states.values()})
        now = utcnow()
        closed = 0
        for watched in open_now:
            reason = verdict(watched, states, fingerprints, self._changed_at, now)
            if reason is not None and watched in self.watched and not watched.task.done():
                watched.reason = reason
                watched.task.cancel()
                closed += 1
        if closed:
            log.info("closed %d stream(s) whose rights ended", closed)
        horizon = min((w.registered_at for w in self.watched), default=time.monotonic())
        for user in [u for u, t in self._changed_at.items() if t < horizon]:
            del self._changed_at[user]
        return closed


def mark(session: Session | AsyncSession, user_pk: int, *, memberships: bool = False) -> None:
    """Say that this session's commit changes ``user_pk``'s rights, for changes
    the flush listener cannot see (bulk ``update()`` statements)."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    users, flag = sync.info.get(_INFO_KEY, (set(), False))
    users.add(user_pk)
    sync.info[_INFO_KEY] = (users, flag or memberships)


async def _token_states(db: AsyncSession, digests: set[str]) -> dict[str, TokenState]:
    rows = await db.execute(
        select(
            ApiToken.token_hash,
            ApiToken.user_pk,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            User.disabled,
        )
        .join(User, User.pk == ApiToken.user_pk)
        .where(ApiToken.token_hash.in_(digests))
    )
    return {
        digest: TokenState(user_pk, revoked is not None, expires, bool(disabled))
        for digest, user_pk, revoked, expires, disabled in rows.all()
    }


async def _fingerprints(db: AsyncSession, users: set[int]) -> dict[int, Fingerprint]:
    if not users:
        return {}
    admins = dict(
        (await db.execute(select(User.pk, User.is_admin).where(User.pk.in_(users)))).all()
    )
    roles: dict[int, set[tuple[int, str]]] = {pk: set() for pk in users}
    rows = await db.execute(
        select(Membership.user_pk, Membership.project_pk, Membership.role).where(
            Membership.user_pk.in_(users)
        )
    )
    for user_pk, project_pk, role in rows.all():
        roles[user_pk].add((project_pk, role))
    return {pk: (bool(admins.get(pk)), frozenset(roles[pk])) for pk in users}
