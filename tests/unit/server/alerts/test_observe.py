"""The evaluator's database side on a real SQLite file: offline devices and
latest disk samples observed, firing alerts written with one message owed per
webhook, nothing new while they keep firing, and one resolved message each."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.alerts import observe, service
from edgefleet.server.alerts.evaluate import evaluate
from edgefleet.server.alerts.tables import Alert, AlertDelivery, AlertRule, AlertWebhook
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device, Presence
from edgefleet.server.projects.tables import Project
from edgefleet.server.telemetry.tables import TelemetrySample


def sample(device: Device, minutes_ago: float, disk: float) -> TelemetrySample:
    return TelemetrySample(
        device_pk=device.pk,
        time=utcnow() - timedelta(minutes=minutes_ago),
        cpu=1.0,
        memory=1.0,
        disk=disk,
    )


async def one_pass(db: AsyncSession) -> int:
    rules = await service.enabled_rules(db)
    kinds: dict[str, set[int]] = {}
    for rule in rules:
        kinds.setdefault(rule.kind, set()).add(rule.project_pk)
    observations = await observe.observe(db, kinds, utcnow())
    return await service.apply(db, evaluate(rules, observations, set(await service.firing(db))))


async def test_offline_and_disk_fire_once_then_resolve(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as db:
        project = Project(id="p1", name="north")
        db.add(project)
        await db.flush()
        gone = Device(id="dgone", project_pk=project.pk, name="gone", credential_hash="h1")
        here = Device(id="dhere", project_pk=project.pk, name="here", credential_hash="h2")
        never = Device(id="dnever", project_pk=project.pk, name="never", credential_hash="h3")
        gone.last_seen = utcnow() - timedelta(minutes=10)
        here.last_seen = utcnow()
        db.add_all([gone, here, never])
        await db.flush()
        now = utcnow()
        db.add(
            Presence(
                device_pk=here.pk,
                replica="r",
                connected_at=now,
                expires_at=now + timedelta(minutes=1),
            )
        )
        # the latest sample counts, not the worst: "here" was full, is fine now
        db.add_all([sample(here, 5, 99.0), sample(here, 1, 50.0), sample(gone, 11, 97.0)])
        db.add_all(
            [
                AlertRule(
                    id="l1",
                    project_pk=project.pk,
                    name="off",
                    kind="device_offline",
                    for_seconds=300,
                ),
                AlertRule(
                    id="l2", project_pk=project.pk, name="disk", kind="disk_above", threshold=90
                ),
                AlertWebhook(id="w1", project_pk=project.pk, name="a", url="http://x", secret="s"),
                AlertWebhook(id="w2", project_pk=project.pk, name="b", url="http://y", secret="s"),
            ]
        )
        await db.commit()

        assert await one_pass(db) == 2
        alerts = {(a.subject, a.message) for a in await db.scalars(select(Alert))}
        assert alerts == {
            ("device:dgone", "device gone offline for 600 s"),
            ("device:dgone", "device gone disk 97.0% used"),
        }
        assert await db.scalar(select(func.count()).select_from(AlertDelivery)) == 4

        assert await one_pass(db) == 0  # still firing: no new alert, no new message
        assert await db.scalar(select(func.count()).select_from(AlertDelivery)) == 4

        gone.last_seen = utcnow()
        db.add(
            Presence(
                device_pk=gone.pk,
                replica="r",
                connected_at=now,
                expires_at=now + timedelta(minutes=1),
            )
        )
        db.add(sample(gone, 0, 40.0))
        await db.commit()
        assert await one_pass(db) == 2
        states = {a.state for a in await db.scalars(select(Alert))}
        assert states == {"resolved"}
        resolved = await db.scalars(select(AlertDelivery).where(AlertDelivery.status == "resolved"))
        assert len(list(resolved)) == 4


async def test_failed_job_devices_and_backlog_observed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from edgefleet.server.applications.tables import Application, AppVersion
    from edgefleet.server.data.tables import DataStream
    from edgefleet.server.jobs.tables import Job, JobDevice

    async with sessions() as db:
        project = Project(id="p2", name="south")
        db.add(project)
        await db.flush()
        app = Application(id="a1", project_pk=project.pk, name="probe")
        db.add(app)
        await db.flush()
        version = AppVersion(id="v1", application_pk=app.pk, version="1")
        device = Device(id="dpi", project_pk=project.pk, name="pi", credential_hash="h9")
        db.add_all([version, device])
        await db.flush()
        job = Job(
            id="j1",
            project_pk=project.pk,
            application_pk=app.pk,
            version_pk=version.pk,
            name="sensing",
            state="running",
        )
        db.add(job)
        await db.flush()
        db.add(JobDevice(job_pk=job.pk, device_pk=device.pk, state="failed", error="exit 3"))
        db.add_all(
            [
                DataStream(job_pk=job.pk, device_id="dpi", stream="a", pending=700),
                DataStream(job_pk=job.pk, device_id="dpi", stream="b", pending=400),
            ]
        )
        await db.commit()
        kinds = {"job_failed": {project.pk}, "backlog_above": {project.pk}}
        found = {(o.kind, o.subject): o for o in await observe.observe(db, kinds, utcnow())}
        failed = found[("job_failed", "job:j1/device:dpi")]
        assert failed.labels["error"] == "exit 3" and failed.labels["job_name"] == "sensing"
        assert found[("backlog_above", "device:dpi")].value == 1100
        # another project's rules see none of it
        assert await observe.observe(db, {"job_failed": {project.pk + 100}}, utcnow()) == []
        job.state = "cancelled"  # a cancelled job's failures no longer alert
        await db.commit()
        assert await observe.job_failed(db, {project.pk}) == []
