"""Attacks on periodic jobs: a schedule set by a viewer, another project's runs,
hostile cron strings and time zones, and a device flooding run reports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.sync.client import connect

from edgefleet.wire.messages import ScheduleRuns, ScheduleRunsAck
from edgefleet.wire.schedule import RunRecord
from tests.conftest import Fleet
from tests.security.conftest import Estate
from tests.support.procs import ADMIN_TOKEN, ServerProc
from tests.support.raw_agent import answer, say_hello

ONE_SHOT = {"services": {"probe": {"image": "localhost/probe:1", "command": ["true"]}}}
ALWAYS_ON = {
    "services": {"web": {"image": "localhost/web:1", "command": ["true"], "restart": "always"}}
}
EVERY_MINUTE = {"cron": "* * * * *", "timezone": "UTC"}


def test_a_viewer_cannot_create_a_periodic_job(estate: Estate) -> None:
    before = estate.snapshot()
    body = {"application": estate.app, "devices": [estate.device], "schedule": EVERY_MINUTE}
    with estate.http("viewer") as http:
        assert http.post("/api/v1/jobs", json=body).status_code == 403
        patched = http.patch(f"/api/v1/jobs/{estate.job}", json={"schedule": EVERY_MINUTE})
        assert patched.status_code == 403
    with estate.http(None, token=None) as anonymous:
        assert anonymous.post("/api/v1/jobs", json=body).status_code == 401
    # A developer may, but not on process services (nothing a run could start).
    with estate.http("developer") as http:
        refused = http.post("/api/v1/jobs", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "schedule"
    assert "process runtime" in refused.json()["detail"]
    assert estate.snapshot() == before


def test_another_projects_job_runs_are_not_found(estate: Estate) -> None:
    with estate.http(OUTSIDER := "outsider") as http:
        assert http.get(f"/api/v1/jobs/{estate.job}/runs").status_code == 404, OUTSIDER
    with estate.http("viewer") as http:
        shown = http.get(f"/api/v1/jobs/{estate.job}/runs")
        assert shown.status_code == 200 and shown.json() == {"items": [], "next": None}
        bad = http.get(f"/api/v1/jobs/{estate.job}/runs", params={"state": "<script>"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"
        bad = http.get(f"/api/v1/jobs/{estate.job}/runs", params={"cursor": "!!"})
        assert bad.status_code == 422
        outside = http.get(f"/api/v1/jobs/{estate.job}/runs", params={"device": "elsewhere"})
        assert outside.status_code == 422 and outside.json()["error"]["field"] == "device"


HOSTILE: list[tuple[Any, str]] = [
    ({"cron": "61 * * * *"}, "schedule.cron"),
    ({"cron": "* " * 5000}, "schedule.cron"),
    ({"cron": "* * * * *; rm -rf /"}, "schedule.cron"),
    ({"cron": "H * * * *"}, "schedule.cron"),
    ({"cron": "0 0 30 2 *"}, "schedule.cron"),  # never fires
    ({"cron": "* * * * *", "timezone": "../../../etc/shadow"}, "schedule.timezone"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "schedule.timezone"),
    ({"cron": "* * * * *", "timezone": "x" * 10_000}, "schedule.timezone"),
    ({"cron": "* * * * *", "overlap": "parallel"}, "schedule.overlap"),
    ({"cron": "* * * * *", "command": "id"}, "schedule.command"),
    ({"cron": ["* * * * *"]}, "schedule.cron"),
    ("* * * * * *", "schedule.cron"),  # every second: below --schedule-min-period
    ({"cron": "* * * * *"}, "schedule"),  # the application has no one-shot service
]


def test_hostile_schedules_are_refused_naming_the_field(fleet: Fleet) -> None:
    server = _server(fleet)
    with server.http() as http:
        for schedule, field in HOSTILE:
            app = "always-on" if field == "schedule" else "probe"
            body = {"application": app, "selector": {}, "schedule": schedule}
            response = http.post("/api/v1/jobs", json=body)
            assert response.status_code == 422, (schedule, response.text)
            assert response.json()["error"]["field"] == field, (schedule, response.text)
        assert http.get("/api/v1/jobs").json()["items"] == []  # nothing stored
    # The CLI says the same, without a traceback.
    bad = subprocess.run(
        [
            *(sys.executable, "-m", "edgefleet", "--server", server.url, "--token", ADMIN_TOKEN),
            *("jobs", "create", "probe", "--selector", "a=b", "--schedule", "61 * * * *"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "schedule.cron" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    with server.http() as http:
        # The shorthand a user may type: a cron string with a top-level time zone.
        body = {"application": "probe", "selector": {}, "schedule": "0 7 * * *"}
        made = http.post("/api/v1/jobs", json={**body, "timezone": "Europe/Paris"})
        assert made.status_code == 201, made.text
        assert made.json()["schedule"]["timezone"] == "Europe/Paris"
        # Changing it is checked the same way; a job that is not periodic stays so.
        job = f"/api/v1/jobs/{made.json()['id']}"
        for schedule, field in HOSTILE[:-1]:
            response = http.patch(job, json={"schedule": schedule})
            assert response.status_code == 422, (schedule, response.text)
            assert response.json()["error"]["field"] == field, (schedule, response.text)
        assert http.get(job).json()["schedule"]["cron"] == "0 7 * * *"
        changed = http.patch(job, json={"schedule": {"cron": "30 6 * * 1-5", "overlap": "queue"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["schedule"] | {"next": None} == {
            "cron": "30 6 * * 1-5",
            "timezone": "UTC",
            "overlap": "queue",
            "next": None,
        }
        plain = http.post("/api/v1/jobs", json={"application": "probe", "selector": {}})
        refused = http.patch(f"/api/v1/jobs/{plain.json()['id']}", json={"schedule": "@daily"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "schedule"


def test_a_flood_of_run_reports_is_bounded(fleet: Fleet) -> None:
    server = _server(fleet, kept=50)
    mallory = fleet.start_agent("mallory")
    device = mallory.wait_enrolled()
    with server.client() as client:
        job = client.create_job("probe", devices=[device], schedule=EVERY_MINUTE)["id"]
        plain = client.create_job("probe", devices=[device])["id"]  # not periodic
        other = fleet.start_agent("other")
        elsewhere = client.create_job(
            "probe", devices=[other.wait_enrolled()], schedule=EVERY_MINUTE
        )["id"]
    mallory.stop()
    credential = json.loads((mallory.state_dir / "device.json").read_text())["credential"]
    now = datetime.now(UTC)

    def runs(prefix: str, count: int, job_id: str = job) -> list[RunRecord]:
        return [
            RunRecord(
                id=f"{prefix}{n}",
                job=job_id,
                scheduled=now + timedelta(seconds=n),
                state="ok",
                exit_code=0,
            )
            for n in range(count)
        ]

    url = server.url.replace("http://", "ws://") + "/api/v1/agent/connect"
    with connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        say_hello(ws)
        for batch in range(10):  # 2,000 runs in 10 reports
            ws.send(ScheduleRuns(runs=runs(f"b{batch}-", 200)).model_dump_json())
            assert len(answer(ws, ScheduleRunsAck).ids) == 200
        # Sent again: stored once. Someone else's job, or a job that is not periodic:
        # acknowledged (the device may forget them) but never stored.
        ws.send(ScheduleRuns(runs=runs("b9-", 200)[-5:]).model_dump_json())
        assert len(answer(ws, ScheduleRunsAck).ids) == 5
        ws.send(ScheduleRuns(runs=runs("x", 3, elsewhere) + runs("y", 3, plain)).model_dump_json())
        assert len(answer(ws, ScheduleRunsAck).ids) == 6
        # Over the wire's bound: not a valid message at all.
        ws.send(
            json.dumps(
                {
                    "type": "schedule_runs",
                    "runs": [r.model_dump(mode="json") for r in runs("z", 201)],
                }
            )
        )
    with server.client() as client:
        stored = list(client.job_runs(job))
        assert len(stored) == 50  # --schedule-runs-kept
        assert {r["id"] for r in stored} == {f"b9-{n}" for n in range(150, 200)}
        assert list(client.job_runs(elsewhere)) == []
        assert list(client.job_runs(plain)) == []


def _server(fleet: Fleet, kept: int = 1000) -> ServerProc:
    server = fleet.start_server(
        extra_args=["--schedule-min-period", "10", "--schedule-runs-kept", str(kept)]
    )
    with server.client() as client:
        client.create_application("probe", "1", spec=ONE_SHOT)
        client.create_application("always-on", "1", spec=ALWAYS_ON)
    return server
