"""The alert loop: on the replica holding the scheduler lease, every
``--alert-interval`` seconds, evaluate the rules and send what is owed.

It renews the same ``scheduler`` lease row the scheduler uses (same holder,
same TTL), so exactly one replica evaluates and delivers, and a replica that
dies hands both over with the rest of the scheduler's work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from edgefleet.server.alerts import delivery, observe, service
from edgefleet.server.alerts.evaluate import evaluate
from edgefleet.server.context import ServerContext
from edgefleet.server.db.base import utcnow
from edgefleet.server.scheduler import lease
from edgefleet.server.scheduler.loop import LEASE, LEASE_TTL
from edgefleet.tasks import cancel_all

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


async def evaluate_once(ctx: ServerContext) -> int:
    """One evaluation: observations in, transitions written; returns how many."""
    async with ctx.session() as db:
        rules = await service.enabled_rules(db)
        active = await service.firing(db)
        kinds: dict[str, set[int]] = {}
        for rule in rules:
            kinds.setdefault(rule.kind, set()).add(rule.project_pk)
        observations = await observe.observe(db, kinds, utcnow()) if rules else []
        transitions = evaluate(rules, observations, set(active))
        return await service.apply(db, transitions)


class AlertLoop:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self.passes = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_all([task])  # a loop that had crashed says so here

    async def _leader(self) -> bool:
        async with self.ctx.session() as db:
            return await lease.acquire(db, LEASE, self.ctx.replica, LEASE_TTL)

    def _client(self) -> httpx.AsyncClient:
        """The webhook client, made when a first message is due: a server with
        nothing to deliver loads neither httpx nor a TLS context (~4 MB resident
        for as long as it runs, issue 16)."""
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(
                timeout=self.ctx.settings.alert_webhook_timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._http

    async def _run(self) -> None:
        s = self.ctx.settings
        try:
            while True:
                await asyncio.sleep(s.alert_interval)
                try:
                    if not await self._leader():
                        continue
                    await evaluate_once(self.ctx)
                    await delivery.deliver_due(self.ctx, self._client)
                    self.passes += 1
                except Exception:  # logged with its traceback; the next pass retries
                    log.exception("alert pass failed")
        finally:
            if self._http is not None:
                await self._http.aclose()


async def start(ctx: ServerContext) -> Callable[[], Awaitable[None]]:
    """Feature start hook (after the registry key is loaded: webhook secrets are sealed)."""
    loop = AlertLoop(ctx)
    await loop.start()
    return loop.stop
