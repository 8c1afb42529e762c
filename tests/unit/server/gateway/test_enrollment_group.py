"""A group of enrollments staged on a real SQLite file: each request decided as
if it came alone (keys, use limits, key labels, names), in a few queries; and
a key's uses counted by compare-and-set, so a use counted by another writer
between the group's read and its update is never exceeded."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from edgefleet.server.auth import secrets
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.errors import Conflict, Invalid, Unauthorized
from edgefleet.server.gateway.enrollment_group import Enrolled, Outcome, Request, stage
from edgefleet.server.keys.tables import ProvisioningKey
from edgefleet.server.projects.tables import Project
from edgefleet.wire.messages import DeviceFacts

Sessions = async_sessionmaker[AsyncSession]


async def _key(sessions: Sessions, project_name: str = "north", **fields: Any) -> str:
    """A key of ``project_name`` (made on first use); returns its secret."""
    secret = secrets.generate(secrets.KEY_PREFIX)
    async with sessions() as db:
        project = await db.scalar(select(Project).where(Project.name == project_name))
        if project is None:
            project = Project(id=f"p-{project_name}", name=project_name)
            db.add(project)
            await db.flush()
        db.add(
            ProvisioningKey(
                id=f"k{secret[-6:]}",
                project_pk=project.pk,
                key_hash=secrets.digest(secret),
                prefix=secrets.display_prefix(secret),
                **fields,
            )
        )
        await db.commit()
    return secret


def _request(key: str, name: str | None = None, **labels: str) -> Request:
    return Request(
        provisioning_key=key,
        name=name,
        default_name="rack",
        labels=labels,
        facts=DeviceFacts(agent_version="test"),
        public_key=None,
    )


async def _stage(sessions: Sessions, group: list[Request]) -> list[Outcome]:
    async with sessions() as db:
        outcomes = await stage(db, group)
        await db.commit()
    return outcomes


async def _uses(sessions: Sessions, secret: str) -> int:
    async with sessions() as db:
        key = await db.scalar(
            select(ProvisioningKey).where(ProvisioningKey.key_hash == secrets.digest(secret))
        )
        assert key is not None
        return key.uses


async def _names(sessions: Sessions) -> list[str]:
    async with sessions() as db:
        return sorted(await db.scalars(select(Device.name)))


def _kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.device.name if isinstance(o, Enrolled) else type(o).__name__ for o in outcomes]


async def test_each_request_is_decided_as_if_alone(sessions: Sessions) -> None:
    limited = await _key(sessions, max_uses=3, labels={"tier": "test"})
    bad = secrets.generate(secrets.KEY_PREFIX)
    revoked = await _key(sessions, revoked_at=utcnow())
    expired = await _key(sessions, expires_at=utcnow() - timedelta(seconds=1))
    group = [
        _request(limited, "a"),
        _request(bad, "b"),
        _request(limited, "c", tier="prod"),  # the key sets tier=test
        _request(limited, "a"),  # taken by the first, in this very group
        _request(revoked, "d"),
        _request(limited, "e", tier="test"),
        _request(limited, "f"),
        _request(limited, "g"),  # the key's three uses are gone by now
        _request(expired, "h"),
    ]
    outcomes = await _stage(sessions, group)

    assert _kinds(outcomes) == [
        "a",
        "Unauthorized",
        "Invalid",
        "Conflict",
        "Unauthorized",
        "e",
        "f",
        "Unauthorized",
        "Unauthorized",
    ]
    messages = [str(o) for o in outcomes if isinstance(o, Unauthorized)]
    assert messages == [
        "provisioning key is not valid",
        "provisioning key was revoked",
        "provisioning key was already used 3 time(s), its limit",
        messages[3],
    ]
    assert messages[3].startswith("provisioning key expired at")
    refused = outcomes[2]
    assert isinstance(refused, Invalid) and refused.field == "labels.tier"
    assert isinstance(outcomes[3], Conflict)
    assert await _uses(sessions, limited) == 3  # refused requests spent no use
    assert await _names(sessions) == ["a", "e", "f"]
    enrolled = [o for o in outcomes if isinstance(o, Enrolled)]
    assert all(o.device.labels["tier"] == "test" for o in enrolled)  # the key's labels win
    async with sessions() as db:
        stored = set(await db.scalars(select(Device.credential_hash)))
    assert stored == {secrets.digest(o.credential) for o in enrolled}


async def test_each_device_joins_its_own_keys_project(sessions: Sessions) -> None:
    """Keys of two projects in one group (their projects read in the keys' own
    query): every device lands in the project of the key it presented, names
    collide only within a project, and a key of one project never lends its
    project to a request that presented another."""
    north, south = await _key(sessions), await _key(sessions, "south")
    await _stage(sessions, [_request(south, "gw")])
    outcomes = await _stage(
        sessions,
        [_request(north, "gw"), _request(south, "gw"), _request(south, "edge"), _request(north)],
    )
    assert _kinds(outcomes) == ["gw", "Conflict", "edge", "rack"]
    placed = {o.device.name: o.project.name for o in outcomes if isinstance(o, Enrolled)}
    assert placed == {"gw": "north", "edge": "south", "rack": "north"}
    async with sessions() as db:
        rows = await db.execute(
            select(Device.name, Project.name).join(Project, Project.pk == Device.project_pk)
        )
        stored = sorted((name, project) for name, project in rows)
    assert stored == [("edge", "south"), ("gw", "north"), ("gw", "south"), ("rack", "north")]
    assert (await _uses(sessions, north), await _uses(sessions, south)) == (2, 2)


async def test_unnamed_devices_are_numbered_after_the_names_taken(sessions: Sessions) -> None:
    key = await _key(sessions)
    await _stage(sessions, [_request(key, "rack"), _request(key, "rack-3")])
    outcomes = await _stage(sessions, [_request(key) for _ in range(3)] + [_request(key, "rack")])
    assert _kinds(outcomes) == ["rack-2", "rack-4", "rack-5", "Conflict"]
    assert await _uses(sessions, key) == 2 + 3


async def test_a_use_counted_elsewhere_meanwhile_is_never_exceeded(
    sessions: Sessions, tmp_path: Path
) -> None:
    """Another writer (a second replica, say) takes a use of a two-use key after
    the group read the key and before it counts its own: the group reads the key
    again and enrolls one device, not two."""
    key = await _key(sessions, max_uses=2)
    engine = sessions.kw["bind"]
    database = tmp_path / "edgefleet.db"
    counted_elsewhere = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE provisioning_keys") and not counted_elsewhere:
            with sqlite3.connect(database) as other:
                other.execute("UPDATE provisioning_keys SET uses = uses + 1")
            counted_elsewhere.append(True)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        outcomes = await _stage(sessions, [_request(key, "x"), _request(key, "y")])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)

    assert counted_elsewhere
    assert _kinds(outcomes) == ["x", "Unauthorized"]
    assert await _uses(sessions, key) == 2
    assert await _names(sessions) == ["x"]


async def test_a_group_is_staged_in_the_same_statements_whatever_its_size(
    sessions: Sessions,
) -> None:
    """Four statements for a group of 1 and of 40 (keys, names, the key's uses,
    the devices): the devices are one executemany, not an INSERT ... RETURNING
    each, which is what the ORM wrote on SQLite."""
    key = await _key(sessions)
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split(None, 1)[0])

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        counts = []
        for size in (1, 40):
            statements.clear()
            outcomes = await _stage(sessions, [_request(key, f"n{size}-{i}") for i in range(size)])
            assert all(isinstance(o, Enrolled) for o in outcomes)
            counts.append(list(statements))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)

    assert counts[0] == counts[1] == ["SELECT", "SELECT", "UPDATE", "INSERT"]
    assert len(await _names(sessions)) == 41
    async with sessions() as db:
        device = await db.scalar(select(Device).where(Device.name == "n40-39"))
    assert device is not None and device.created_at is not None and device.enrolled_with
