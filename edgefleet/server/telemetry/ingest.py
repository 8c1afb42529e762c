"""Taking telemetry and workload logs from connected agents.

    agent --TelemetryBatch (<= --telemetry-max-batch samples)--> on_batch
        plausible samples -> store.store_samples (once per device and time) -> commit
        --> TelemetryAck(upto = highest seq of the batch) --> the agent forgets them
    agent --WorkloadLogs(job, service, lines)--> on_logs -> store.store_logs (bounded)

Everything is about ``session.device``, the device whose credential opened the
connection: a message has no field naming a device, so one device cannot
report for another. Samples dated far in the future, or older than the rollups
are kept, are acknowledged (the agent must not resend them) but not stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from edgefleet.server.agent_session import AgentSession
from edgefleet.server.context import ServerContext
from edgefleet.server.telemetry import store
from edgefleet.wire.messages import TelemetryAck, TelemetryBatch, WorkloadLogs

log = logging.getLogger(__name__)

CLOCK_SKEW = 300.0  # seconds a device's clock may run ahead


class TelemetryIngest:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def on_batch(self, session: AgentSession, message: TelemetryBatch) -> None:
        if not message.samples:
            return
        settings = self.ctx.settings
        taken = message.samples[: settings.telemetry_max_batch]
        now = time.time()
        oldest = now - settings.telemetry_rollup_days * 86_400
        plausible = [s for s in taken if oldest <= s.time <= now + CLOCK_SKEW]
        try:
            async with self.ctx.session() as db:
                await store.store_samples(db, session.device.pk, plausible)
        except SQLAlchemyError:
            # Not acknowledged: the agent keeps them and sends them again.
            log.exception("storing telemetry from %s failed", session.device.id)
            return
        await session.send(TelemetryAck(upto=max(s.seq for s in taken)))

    async def on_logs(self, session: AgentSession, message: WorkloadLogs) -> None:
        settings = self.ctx.settings
        try:
            async with self.ctx.session() as db:
                stored = await store.store_logs(
                    db,
                    session.device.pk,
                    session.device.project_pk,
                    message.job,
                    message.service,
                    message.lines,
                    max_lines=settings.stored_log_lines,
                    max_bytes=settings.stored_log_bytes,
                    max_services=settings.stored_log_services,
                )
        except SQLAlchemyError:
            log.exception("storing workload logs from %s failed", session.device.id)
            return
        if not stored:
            log.info("device %s shipped logs of unknown job %s", session.device.id, message.job)


async def start(ctx: ServerContext) -> Callable[[], Awaitable[None]]:
    """Feature start hook: take reports from agents; run the rollup/retention pass."""
    from edgefleet.server.telemetry.retention import Retention

    ingest = TelemetryIngest(ctx)
    ctx.hub.on(TelemetryBatch, ingest.on_batch)
    ctx.hub.on(WorkloadLogs, ingest.on_logs)
    retention = Retention(ctx)
    await retention.start()
    return retention.stop
