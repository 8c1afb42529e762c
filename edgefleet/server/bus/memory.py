"""The in-process bus: the default for a single server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid

from edgefleet.server.bus.base import (
    BusMessage,
    BusTimeout,
    Handler,
    NoResponders,
    subject_matches,
)


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, subject: str, handler: Handler, queue: str | None) -> None:
        self.bus = bus
        self.subject = subject
        self.handler = handler
        self.queue = queue
        self.inbox: asyncio.Queue[BusMessage] = asyncio.Queue()
        self._stopped = False
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopped:
            message = await self.inbox.get()
            try:
                await self.handler(message)
            except Exception:  # a failing handler must not stop the subscription
                import logging

                logging.getLogger(__name__).exception("bus handler failed on %s", message.subject)

    async def unsubscribe(self) -> None:
        self.bus._remove(self)
        if self.task is asyncio.current_task():
            # The handler ends its own subscription: cancelling and awaiting our own
            # task would swallow the cancel and leave the task waiting forever.
            self._stopped = True
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class MemoryBus:
    """Exact subjects are indexed (10k devices mean 10k subscriptions);
    only wildcard subscriptions are scanned."""

    def __init__(self, url: str = "memory") -> None:
        self._exact: dict[str, set[_MemorySubscription]] = {}
        self._wild: set[_MemorySubscription] = set()
        self._round_robin = itertools.count()

    @property
    def _subs(self) -> set[_MemorySubscription]:
        return self._wild.union(*self._exact.values())

    def _add(self, sub: _MemorySubscription) -> None:
        if "*" in sub.subject or ">" in sub.subject:
            self._wild.add(sub)
        else:
            self._exact.setdefault(sub.subject, set()).add(sub)

    def _remove(self, sub: _MemorySubscription) -> None:
        self._wild.discard(sub)
        subs = self._exact.get(sub.subject)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._exact[sub.subject]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.unsubscribe()

    def _targets(self, subject: str) -> list[_MemorySubscription]:
        matched = list(self._exact.get(subject, ()))
        matched += [s for s in self._wild if subject_matches(s.subject, subject)]
        plain = [s for s in matched if s.queue is None]
        groups: dict[str, list[_MemorySubscription]] = {}
        for sub in matched:
            if sub.queue is not None:
                groups.setdefault(sub.queue, []).append(sub)
        for members in groups.values():
            plain.append(members[next(self._round_robin) % len(members)])
        return plain

    async def publish(self, subject: str, data: bytes, reply: str | None = None) -> None:
        for sub in self._targets(subject):
            sub.inbox.put_nowait(BusMessage(subject, data, reply))

    async def subscribe(
        self, subject: str, handler: Handler, queue: str | None = None
    ) -> _MemorySubscription:
        sub = _MemorySubscription(self, subject, handler, queue)
        self._add(sub)
        return sub

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        if not self._targets(subject):
            raise NoResponders(subject)
        inbox = f"_INBOX.{uuid.uuid4().hex}"
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(message: BusMessage) -> None:
            if not future.done():
                future.set_result(message.data)

        sub = await self.subscribe(inbox, on_reply)
        try:
            await self.publish(subject, data, reply=inbox)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise BusTimeout(subject) from None
        finally:
            await sub.unsubscribe()
