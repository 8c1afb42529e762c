"""The rights guard's verdict on one open request: a request that revoked its
own token (or otherwise changed rights itself) finishes; others using that
token are closed."""

from __future__ import annotations

import asyncio

from edgefleet.server.auth.freshness import StreamGuard, TokenState, Watched, verdict
from edgefleet.server.db.base import utcnow

REVOKED = {"d1": TokenState(user_pk=1, revoked=True, expires_at=None, disabled=False)}


async def test_a_request_using_a_revoked_token_is_closed() -> None:
    task = asyncio.current_task()
    assert task is not None
    watched = Watched(("d1",), task)
    assert verdict(watched, REVOKED, {}, {}, utcnow()) == "the token was revoked"


async def test_the_request_that_revoked_its_own_token_finishes() -> None:
    task = asyncio.current_task()
    assert task is not None
    watched = Watched(("d1",), task, acted=True)
    assert verdict(watched, REVOKED, {}, {}, utcnow()) is None


async def test_the_guard_marks_the_request_whose_commit_changed_rights() -> None:
    guard = StreamGuard(interval=60)
    task = asyncio.current_task()
    assert task is not None
    other = asyncio.ensure_future(asyncio.sleep(0))
    mine, theirs = guard.watch(("d1",), task), guard.watch(("d1",), other)
    guard._made_it(task)  # what its after_commit listener does for the committing task
    assert mine.acted and not theirs.acted
    assert verdict(theirs, REVOKED, {}, {}, utcnow()) == "the token was revoked"
    await other
