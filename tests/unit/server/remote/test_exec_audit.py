"""One exec, one audit row (issue 16): :func:`exec_audit.start` commits the row
before the command runs, :func:`exec_audit.finish` completes that same row
with one UPDATE, and the ``exec``/``exec.finished`` events name it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.bus.memory import MemoryBus
from edgefleet.server.events.service import EventLog
from edgefleet.server.events.tables import Event
from edgefleet.server.remote import exec_audit
from edgefleet.server.remote.tables import ExecAudit


async def test_an_exec_is_one_row_committed_before_it_runs_and_completed_after(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = EventLog(sessions, MemoryBus())
    async with sessions() as db:
        row = await exec_audit.start(
            db, events, "ada", 7, "dev1", ["cat", "/etc/passwd"], job="j1", service="web"
        )
        async with sessions() as other:  # committed: another connection sees it now
            seen = (await other.execute(select(ExecAudit))).scalars().all()
            assert [(r.pk, r.user, r.finished_at, r.exit_code) for r in seen] == [
                (row.pk, "ada", None, None)
            ]
        await exec_audit.finish(db, events, row, 3, None)
    async with sessions() as db:
        (done,) = (await db.execute(select(ExecAudit))).scalars().all()
        assert done.pk == row.pk and done.exit_code == 3 and done.error is None
        assert done.finished_at is not None and done.finished_at >= done.time
        assert (done.user, done.project_pk, done.device_id) == ("ada", 7, "dev1")
        assert (done.job_id, done.service, done.command) == ("j1", "web", ["cat", "/etc/passwd"])
        assert done.interactive is False
    await events.flush()
    async with sessions() as db:
        kinds = (await db.execute(select(Event.kind, Event.data).order_by(Event.pk))).all()
    assert [k for k, _ in kinds] == ["exec", "exec.finished"]
    assert kinds[0][1]["exec"] == kinds[1][1]["exec"] == row.pk
    assert kinds[0][1]["command"] == ["cat", "/etc/passwd"]
    assert kinds[1][1]["exit_code"] == 3


async def test_a_failed_exec_still_ends_its_own_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = EventLog(sessions, MemoryBus())
    async with sessions() as db:
        first = await exec_audit.start(db, events, "ada", 7, "dev1", ["true"])
        second = await exec_audit.start(db, events, "bob", 7, "dev1", ["false"], interactive=True)
        await exec_audit.finish(db, events, second, None, "device offline")
        await exec_audit.finish(db, events, first, 0, None)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(ExecAudit)) == 2
        rows = {r.user: r for r in (await db.execute(select(ExecAudit))).scalars()}
    assert (rows["bob"].exit_code, rows["bob"].error, rows["bob"].interactive) == (
        None,
        "device offline",
        True,
    )
    assert (rows["ada"].exit_code, rows["ada"].error) == (0, None)


async def test_a_row_deleted_meanwhile_is_not_recreated_nor_announced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    events = EventLog(sessions, MemoryBus())
    async with sessions() as db:
        row = await exec_audit.start(db, events, "ada", 7, "dev1", ["true"])
        async with sessions() as other:  # its project deleted while the command ran
            await other.execute(ExecAudit.__table__.delete())
            await other.commit()
        await exec_audit.finish(db, events, row, 0, None)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(ExecAudit)) == 0
    await events.flush()
    async with sessions() as db:
        assert (await db.execute(select(Event.kind))).scalars().all() == ["exec"]
