"""Bus traffic for ``/metrics``: a wrapper around whichever :class:`Bus` the
replica runs (memory or NATS) that counts what passes, with labels from a
fixed set (never subjects: they carry device ids, which would grow the
series without bound)."""

from __future__ import annotations

from edgefleet.server.bus.base import Bus, BusError, BusMessage, Handler, Subscription
from edgefleet.server.metrics.registry import ServerMetrics


class CountedBus:
    """Delegates every call to ``inner``, counting messages, failures and subscriptions."""

    def __init__(self, inner: Bus, metrics: ServerMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def publish(self, subject: str, data: bytes, reply: str | None = None) -> None:
        try:
            await self.inner.publish(subject, data, reply)
        except BusError:
            self.metrics.bus_errors.labels("publish").inc()
            raise
        self.metrics.bus_messages.labels("published").inc()

    async def subscribe(
        self, subject: str, handler: Handler, queue: str | None = None
    ) -> Subscription:
        async def counted(message: BusMessage) -> None:
            self.metrics.bus_messages.labels("received").inc()
            await handler(message)

        subscription = await self.inner.subscribe(subject, counted, queue)
        self.metrics.bus_subscriptions.inc()
        return _CountedSubscription(subscription, self.metrics)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        try:
            answer = await self.inner.request(subject, data, timeout)
        except BusError:
            self.metrics.bus_errors.labels("request").inc()
            raise
        self.metrics.bus_messages.labels("requested").inc()
        return answer


class _CountedSubscription:
    def __init__(self, inner: Subscription, metrics: ServerMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self._open = True

    async def unsubscribe(self) -> None:
        if self._open:
            self._open = False
            self.metrics.bus_subscriptions.dec()
        await self.inner.unsubscribe()
