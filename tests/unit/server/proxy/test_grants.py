"""The proxy's remembered admissions (server/proxy/grants.py), without a server:
what bounds a grant and what forgets it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgefleet.server.auth.caller import Caller
from edgefleet.server.db.base import utcnow
from edgefleet.server.jobs.tables import Job
from edgefleet.server.proxy import grants as grants_module
from edgefleet.server.proxy.grants import Grant, Grants
from edgefleet.server.remote.targets import DeviceTarget, WorkloadTarget

WHERE = ("j1", "d1", "web", 8080, True)


def grant(user_pk: int = 1) -> Grant:
    caller = Caller(user_pk=user_pk, user_id=f"u{user_pk}", name=f"user{user_pk}", is_admin=False)
    target = WorkloadTarget(Job(id="j1"), DeviceTarget(1, "d1", "pi", 1), "web")
    return Grant(caller, True, target)


def test_a_grant_is_kept_for_its_lifetime_only(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(grants_module.time, "monotonic", lambda: clock[0])
    grants = Grants(2.0)
    key = grants.key("bearer", "secret", WHERE)
    kept = grants.put(key, grant(), None, grants.changes)
    assert grants.get(key) is kept
    clock[0] += 1.9
    assert grants.get(key) is kept
    clock[0] += 0.2
    assert grants.get(key) is None
    assert len(grants) == 0


def test_the_lifetime_is_capped_at_the_instance_touch_interval() -> None:
    assert Grants(60.0).lifetime == 5.0
    assert Grants(2.0).lifetime == 2.0


def test_no_grant_outlives_its_token() -> None:
    grants = Grants(5.0)
    key = grants.key("bearer", "secret", WHERE)
    grants.put(key, grant(), utcnow() - timedelta(milliseconds=1), grants.changes)
    assert grants.get(key) is None


def test_a_rights_change_forgets_that_users_grants_only() -> None:
    grants = Grants(5.0)
    mine = grants.key("bearer", "mine", WHERE)
    theirs = grants.key("bearer", "theirs", WHERE)
    grants.put(mine, grant(1), None, grants.changes)
    grants.put(theirs, grant(2), None, grants.changes)
    grants.forget({1})
    assert grants.get(mine) is None
    assert grants.get(theirs) is not None


def test_a_judgement_overtaken_by_a_change_is_not_remembered() -> None:
    grants = Grants(5.0)
    key = grants.key("bearer", "secret", WHERE)
    judged_at = grants.changes
    grants.forget({99})  # noted while the request was being judged (any user)
    grants.put(key, grant(), None, judged_at)
    assert grants.get(key) is None


def test_the_same_secret_sent_another_way_or_elsewhere_is_another_key() -> None:
    keys = {
        Grants.key("bearer", "secret", WHERE),
        Grants.key("session", "secret", WHERE),
        Grants.key("app", "secret", WHERE),
        Grants.key("bearer", "secret", ("j1", "d1", "web", 8081, True)),
        Grants.key("bearer", "secret", ("j1", "d1", "web", 8080, False)),
    }
    assert len(keys) == 5
    assert "secret" not in repr(keys)  # only its digest is kept


def test_the_oldest_go_first_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grants_module, "MAX_GRANTS", 3)
    grants = Grants(5.0)
    keys = [grants.key("bearer", f"s{i}", WHERE) for i in range(4)]
    for key in keys:
        grants.put(key, grant(), None, grants.changes)
    assert len(grants) == 3
    assert grants.get(keys[0]) is None
    assert all(grants.get(key) is not None for key in keys[1:])
