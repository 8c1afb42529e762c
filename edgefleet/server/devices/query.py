"""Device queries that many resources share: visibility, label selectors in
SQL, and the online test against the presence table."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true

from edgefleet.labels import Requirement, Selector
from edgefleet.server.auth.caller import Caller
from edgefleet.server.devices.tables import Device, Presence


def requirement_clause(requirement: Requirement) -> ColumnElement[bool]:
    value: ColumnElement[str] = Device.labels[requirement.key].as_string()
    match requirement.op:
        case "exists":
            return value.is_not(None)
        case "!exists":
            return value.is_(None)
        case "=" | "in":
            return value.in_(requirement.values)
        case _:
            return or_(value.is_(None), value.not_in(requirement.values))


def selector_clause(selector: Selector) -> ColumnElement[bool]:
    if not selector.requirements:
        return true()
    return and_(*(requirement_clause(r) for r in selector.requirements))


def online_clause(now: datetime) -> ColumnElement[bool]:
    return and_(Presence.device_pk.is_not(None), Presence.expires_at > now)


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def visible(query: Q, caller: Caller) -> Q:
    projects = caller.visible_projects()
    if projects is None:
        return query
    if not projects:
        return query.where(false())
    return query.where(Device.project_pk.in_(projects))


def visible_or_lent(query: Q, caller: Caller) -> Q:
    """Visible, plus devices lent to one of the caller's projects (see
    :mod:`edgefleet.server.loans`): for finding and listing only."""
    from edgefleet.server.loans.service import guest_clause

    projects = caller.visible_projects()
    if projects is None:
        return query
    return query.where(or_(Device.project_pk.in_(projects), guest_clause(projects)))


def with_presence() -> Select[Device, Presence]:
    return select(Device, Presence).outerjoin(Presence, Presence.device_pk == Device.pk)
