"""The audit trail: every change becomes an event, and who may read which.

Events are one log (``events`` table) read by the events API, its stream, the
portal's feeds and its Audit page. Most kinds are for every member of the
event's project. Some are *audit* kinds, about people and credentials:

=====================  ==========================================================
kind                   who sees it
=====================  ==========================================================
``user.*``             admins (no project)
``token.*``            admins (no project)
``login.*``            admins (no project): successes and failures, client IP
``member.*``           the project's owners, and admins
``key.*``              the project's owners, and admins
``exec``               every member; the argv (``data.command``) only owners,
                       operators and admins (:mod:`edgefleet.server.redact`)
=====================  ==========================================================

Audit events of a change are written in the *same transaction* as the change
(:func:`record`): a change cannot be committed without its event, and an
event is never written for a change that was rolled back. Events about
devices' reports (policy changes) go through the batched
:class:`~edgefleet.server.events.service.EventLog` like other fleet events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, false, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from edgefleet.server import redact
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Role
from edgefleet.server.db.base import utcnow
from edgefleet.server.devices.tables import Device
from edgefleet.server.events.tables import Event

if TYPE_CHECKING:
    from edgefleet.server.agent_session import DeviceRef


class EventRecorder(Protocol):
    """What :func:`policy_changed` needs of the batched event log
    (:class:`~edgefleet.server.events.service.EventLog`, which imports this
    module for its visibility rules, so this one must not import it back)."""

    def record(
        self, kind: str, project_pk: int | None, message: str = "", **fields: Any
    ) -> None: ...


OWNERS_ONLY = ("user.", "token.", "login.", "member.", "key.")
"""Kinds (prefixes) only a project's owners and admins read; with no project, admins."""

PRIVATE_DATA: dict[str, tuple[str, ...]] = {"exec": ("command",)}
"""Per kind, the ``data`` keys shown only to callers who see secrets."""


def record(
    db: AsyncSession,
    kind: str,
    project_pk: int | None,
    message: str,
    *,
    actor: str | None,
    device_id: str | None = None,
    job_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to ``db``'s transaction; the caller's commit writes it."""
    db.add(
        Event(
            time=utcnow(),
            project_pk=project_pk,
            kind=kind,
            device_id=device_id,
            job_id=job_id,
            actor=actor[:64] if actor else actor,
            message=message[:1024],
            data=data or {},
        )
    )


def _restricted(kind: str) -> bool:
    return kind.startswith(OWNERS_ONLY)


def owned(caller: Caller) -> list[int]:
    """Projects the caller owns."""
    return [pk for pk, role in caller.roles.items() if Role(role) is Role.OWNER]


def visible(caller: Caller, project_pk: int | None, kind: str) -> bool:
    """Whether ``caller`` may read an event of this project and kind."""
    if caller.is_admin:
        return True
    if project_pk is None or project_pk not in caller.roles:
        return False
    return not _restricted(kind) or project_pk in owned(caller)


def where_visible(caller: Caller) -> ColumnElement[bool] | None:
    """The SQL condition for :func:`visible` (None: everything, for admins)."""
    if caller.is_admin:
        return None
    members = list(caller.roles)
    if not members:
        return false()
    restricted = or_(*(Event.kind.startswith(prefix) for prefix in OWNERS_ONLY))
    owners = owned(caller)
    allowed = Event.project_pk.in_(owners) if owners else false()
    return and_(Event.project_pk.in_(members), or_(not_(restricted), allowed))


def shown_data(
    caller: Caller, project_pk: int | None, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    """An event's ``data`` as ``caller`` may read it: private keys dropped, and
    ``hidden`` naming them, for callers below operator."""
    private = [key for key in PRIVATE_DATA.get(kind, ()) if key in data]
    if not private or redact.sees_secrets(caller, project_pk):
        return data
    return {k: v for k, v in data.items() if k not in private} | {"hidden": private}


async def login_failed(db: AsyncSession, name: str, client: str) -> None:
    """A failed sign-in, committed at once (nothing else is): admins only, with
    the client's address and the name tried — never the password."""
    record(
        db,
        "login.failed",
        None,
        f"failed sign-in as {name[:64]!r} from {client}",
        actor=name[:64],
        data={"username": name[:256], "client": client},
    )
    await db.commit()


def login_succeeded(db: AsyncSession, user_name: str, client: str) -> None:
    """A sign-in; written with the session it opens."""
    record(
        db,
        "login.succeeded",
        None,
        f"{user_name} signed in from {client}",
        actor=user_name,
        data={"client": client},
    )


def policy_changed(
    events: EventRecorder,
    device: DeviceRef,
    before: object,
    after: object,
) -> None:
    """Record a ``device.policy_changed`` event when the policy a device reports
    (part of its facts) differs from the one it reported last: what its owner
    allows decides which jobs may run there, so a change is worth a trace."""
    if not isinstance(after, dict):
        return  # facts unchanged
    old = (before.get("policy") if isinstance(before, dict) else None) or {}
    new = after.get("policy") or {}
    if old == new:
        return
    changed = {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }
    events.record(
        "device.policy_changed",
        device.project_pk,
        f"device {device.name} reports a new policy: {', '.join(changed)} changed",
        device_id=device.id,
        data={"changed": changed},
    )


REFUSALS_RECORDED = 100
"""Per assignment pass, refused devices recorded one event each; the rest in one summary."""


async def refusals(db: AsyncSession, project_pk: int, job_id: str, refused: dict[int, str]) -> None:
    """``job.refused`` events for devices that newly cannot run a job (their
    policy or capabilities rule it out), written with the assignment."""
    if not refused:
        return
    first = dict(list(refused.items())[:REFUSALS_RECORDED])
    rows = await db.execute(select(Device.pk, Device.id, Device.name).where(Device.pk.in_(first)))
    for pk, device_id, name in rows.all():
        message = f"job {job_id} refused on {name}: {first[pk]}"
        record(
            db,
            "job.refused",
            project_pk,
            message,
            actor=None,
            device_id=device_id,
            job_id=job_id,
            data={"reason": first[pk]},
        )
    if len(refused) > len(first):
        more = len(refused) - len(first)
        message = f"job {job_id} refused on {more} more device(s), for the same kinds of reasons"
        record(db, "job.refused", project_pk, message, actor=None, job_id=job_id)
