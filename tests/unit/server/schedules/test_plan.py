"""Which services a periodic job's fire times start, and the schedule checks
made before a job is stored (422 naming the field)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edgefleet.server.errors import Invalid
from edgefleet.server.schedules.plan import check, one_shot, split
from edgefleet.spec.model import AppSpec
from edgefleet.wire.schedule import Schedule

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOURLY = Schedule(cron="0 * * * *", timezone="Europe/Paris")


def spec(services: dict[str, dict[str, object]]) -> AppSpec:
    return AppSpec.model_validate({"services": services})


MIXED = spec(
    {
        "db": {"image": "db", "restart": "always"},
        "measure": {"image": "m", "depends_on": {"db": {"condition": "service_started"}}},
        "upload": {"image": "u", "restart": "no", "depends_on": {"measure": {}}},
    }
)


def test_one_shot_services_in_start_order() -> None:
    assert one_shot(MIXED) == ["measure", "upload"]


def test_split_leaves_always_on_services_in_the_spec() -> None:
    rest, periodic = split(MIXED, HOURLY)
    assert set(rest.services) == {"db"}
    assert set(periodic.services) == {"measure", "upload"}
    assert periodic.schedule == HOURLY
    assert set(MIXED.services) == {"db", "measure", "upload"}  # not changed in place


def test_check_accepts_a_sound_schedule() -> None:
    check(HOURLY, MIXED, min_period=60, now=NOW)


def test_nothing_to_run_is_refused() -> None:
    with pytest.raises(Invalid) as err:
        check(
            HOURLY,
            spec({"web": {"image": "w", "restart": "unless-stopped"}}),
            min_period=1,
            now=NOW,
        )
    assert err.value.field == "schedule" and "no one-shot service" in err.value.message


def test_an_always_on_service_needing_a_one_shot_is_refused() -> None:
    broken = spec(
        {
            "init": {"image": "i"},
            "web": {"image": "w", "restart": "always", "depends_on": {"init": {}}},
        }
    )
    with pytest.raises(Invalid) as err:
        check(HOURLY, broken, min_period=1, now=NOW)
    assert err.value.field == "schedule" and "depends on init" in err.value.message


def test_too_frequent_is_refused_with_the_setting_named() -> None:
    with pytest.raises(Invalid) as err:
        check(Schedule(cron="*/5 * * * * *"), MIXED, min_period=10, now=NOW)
    assert err.value.field == "schedule.cron" and "--schedule-min-period" in err.value.message
    check(Schedule(cron="*/10 * * * * *"), MIXED, min_period=10, now=NOW)


def test_process_services_are_refused() -> None:
    processes = spec({"job": {"runtime": "process", "command": ["true"]}})
    with pytest.raises(Invalid) as err:
        check(HOURLY, processes, min_period=1, now=NOW)
    assert err.value.field == "schedule" and "process runtime" in err.value.message
