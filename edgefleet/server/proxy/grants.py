"""Who may reach which app, remembered for a moment (issue 16).

Authenticating a proxied request's caller and authorizing its route (the
token, the user's memberships, the job, the device, the declared ports, a
personal instance's owner) took six database queries: most of a small GET's
added latency. A :class:`Grant` remembers the answer for one credential and
one route, so a page's burst of requests pays it once.

Revocation stays as prompt as the rest of the server makes it::

    a commit changes a user's rights      --> StreamGuard.changed (this replica at
    (token revoked/deleted, user disabled,    commit time, the others through the
     memberships or admin flag changed,       bus: ef.auth.changed)
     an instance unshared or stopped)             --> Grants.forget(users): at once
    anything else (a job deleted, a port no   --> a grant lives at most ``lifetime``:
    longer declared, a change nobody              the guard's recheck interval (2 s by
    announced)                                    default), never past its token's expiry

A change noted while a request was being judged keeps its answer from being
remembered (:attr:`Grants.changes`): the judgement may predate the change.
Refusals are never remembered: a request that is refused is judged afresh
every time. Only the first credential a request offers (its bearer token, else
its first cookie in the order routes try them) is looked up here, so a
remembered answer is always the one a fresh check would reach first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.secrets import digest
from edgefleet.server.auth.tables import ApiToken
from edgefleet.server.db.base import utcnow
from edgefleet.server.instances.access import TOUCH_EVERY
from edgefleet.server.remote.targets import WorkloadTarget

MAX_GRANTS = 4096  # remembered at once per replica; the oldest go first

Where = tuple[str, str, str, int, bool]  # job, device, service, port, on the portal's origin
Key = tuple[str, str, Where]


@dataclass(frozen=True)
class Grant:
    """A request's admission: who it is, whether by bearer token, and the app."""

    caller: Caller
    used_bearer: bool
    target: WorkloadTarget


@dataclass(frozen=True)
class _Kept:
    grant: Grant
    until: float  # time.monotonic()
    token_expires: datetime | None


class Grants:
    """The grants of one replica, keyed by credential and route."""

    def __init__(self, lifetime: float) -> None:
        # within the instance touch interval, so a used instance never looks idle
        self.lifetime = min(lifetime, TOUCH_EVERY.total_seconds())
        self._kept: dict[Key, _Kept] = {}
        self.changes = 0  # rights changes noted so far: a judgement's vintage

    def __len__(self) -> int:
        return len(self._kept)

    @staticmethod
    def key(how: str, secret: str, where: Where) -> Key:
        """``how`` the secret came (``bearer``, ``session`` or ``app`` cookie): each
        is checked differently, so the same secret sent another way is another key."""
        return (how, digest(secret), where)

    def get(self, key: Key) -> Grant | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        if kept.until <= time.monotonic() or (
            kept.token_expires is not None and kept.token_expires <= utcnow()
        ):
            del self._kept[key]
            return None
        return kept.grant

    def put(self, key: Key, grant: Grant, token_expires: datetime | None, judged_at: int) -> Grant:
        """Remember ``grant``, judged when :attr:`changes` was ``judged_at``; not if
        a change was noted since (it may have come after the judgement's reads)."""
        if judged_at != self.changes:
            return grant
        if len(self._kept) >= MAX_GRANTS:
            self._prune()
        self._kept[key] = _Kept(grant, time.monotonic() + self.lifetime, token_expires)
        return grant

    def forget(self, users: Iterable[int]) -> None:
        """These users' rights changed: their next requests are judged afresh."""
        self.changes += 1
        gone = set(users)
        for key in [k for k, kept in self._kept.items() if kept.grant.caller.user_pk in gone]:
            del self._kept[key]

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, kept in self._kept.items() if kept.until <= now]:
            del self._kept[key]
        while len(self._kept) >= MAX_GRANTS:
            del self._kept[next(iter(self._kept))]


async def token_expiry(db: AsyncSession, secret: str) -> datetime | None:
    """When the credential stops being valid: no grant outlives it."""
    return await db.scalar(select(ApiToken.expires_at).where(ApiToken.token_hash == digest(secret)))
