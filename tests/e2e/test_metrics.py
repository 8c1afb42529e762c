"""``GET /metrics`` on a real server process with a real agent (process
runtime): the scrape parses with prometheus_client's own parser and shows the
fleet as it is; a scrape needs the scrape token or an admin token."""

from __future__ import annotations

import httpx

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, wait_for
from tests.support.scrape import Samples, total, value
from tests.support.scrape import scrape as scrape_as

SCRAPE_TOKEN = "scrape-0123456789abcdef"
COMPOSE = {
    "services": {
        "idle": {
            "x-edgefleet-runtime": "process",
            "command": ["/usr/bin/python3", "-c", "import time; time.sleep(600)"],
        }
    }
}


def scrape(url: str, token: str | None = SCRAPE_TOKEN) -> tuple[Samples, set[str]]:
    return scrape_as(url, token)


def test_metrics_show_the_fleet_and_only_to_scrapers(
    fleet: Fleet, database_url: str | None
) -> None:
    """On SQLite and PostgreSQL: the fleet gauges are GROUP BY queries on either."""
    server = fleet.start_server(
        extra_args=["--metrics-token", SCRAPE_TOKEN, "--metrics-cache-seconds", "0"]
    )
    agent = fleet.start_agent("metricsdev")
    device = agent.wait_enrolled()

    def one_online() -> bool:
        samples, _ = scrape(server.url)
        return value(samples, "edgefleet_devices", project="default", online="true") == 1.0

    wait_for(one_online, 30, what="the device counted online")
    samples, families = scrape(server.url)
    assert value(samples, "edgefleet_devices", project="default", online="false") == 0.0
    assert value(samples, "edgefleet_agents_connected") == 1.0
    # the agent's frames (its hello, heartbeats, status) came through the
    # pacer; one agent never fills a loop turn, so none of them waited
    assert (value(samples, "edgefleet_agent_frames_total") or 0) >= 1.0
    assert value(samples, "edgefleet_agent_frames_deferred_total") == 0.0
    assert value(samples, "edgefleet_gc_collections_paced_total") == 0.0
    assert value(samples, "edgefleet_gc_thaws_total") == 0.0  # nothing frozen to thaw
    # one agent on an idle server: let in at once (its enrollment's first start
    # connects too, hence at least one), never told to come back
    assert (value(samples, "edgefleet_agent_connections_admitted_total") or 0) >= 1.0
    assert value(samples, "edgefleet_agent_connections_refused_total") == 0.0
    assert total(samples, "edgefleet_jobs") == 0.0
    # the hub subscribes on the bus at start; an enrolled agent's presence crosses it
    assert value(samples, "edgefleet_bus_subscriptions") >= 1.0
    assert total(samples, "edgefleet_bus_messages_total") >= 1.0
    for name in (
        "edgefleet_devices",
        "edgefleet_devices_ready",
        "edgefleet_jobs",
        "edgefleet_job_devices",
        "edgefleet_http_requests",
        "edgefleet_http_request_duration_seconds",
        "edgefleet_websockets_open",
        "edgefleet_event_loop_lag_seconds",
        "edgefleet_data_records_stored",
        "edgefleet_bus_messages",
        "edgefleet_bus_subscriptions",
        "edgefleet_agent_frames",
        "edgefleet_agent_frames_deferred",
        "edgefleet_gc_collections_paced",
        "process_resident_memory_bytes",
        "process_cpu_seconds",
    ):
        assert name in families, f"{name} has no HELP/TYPE: {sorted(families)}"
    assert (value(samples, "process_resident_memory_bytes") or 0) > 10_000_000
    # The agent's connection is a WebSocket held open on this replica.
    assert value(samples, "edgefleet_websockets_open", route="/api/v1/agent/connect") == 1.0

    with server.client() as client:
        client.create_application("idle", "1.0", spec=COMPOSE)
        job = client.create_job("idle", devices=[device])["id"]

    def job_running() -> bool:
        samples, _ = scrape(server.url)
        return value(samples, "edgefleet_job_devices", state="running") == 1.0

    wait_for(job_running, 60, what=f"job {job} counted running on the device")
    samples, _ = scrape(server.url)
    assert total(samples, "edgefleet_jobs") == 1.0
    assert total(samples, "edgefleet_job_devices") == 1.0

    # Requests are counted by route template, never by raw path.
    route = "/api/v1/devices/{device}"
    key = (
        "edgefleet_http_requests_total",
        (("method", "GET"), ("route", route), ("status", "2xx")),
    )
    before = samples.get(key, 0.0)
    with server.http() as http:
        for _ in range(3):
            assert http.get(f"/api/v1/devices/{device}").status_code == 200
        assert http.get("/api/v1/devices/no-such-device").status_code == 404
    after, _ = scrape(server.url)
    assert after[key] == before + 3
    assert value(after, "edgefleet_http_requests_total", method="GET", route=route, status="4xx")
    assert not any(device in dict(labels).get("route", "") for _n, labels in after), (
        "a raw path leaked into a label"
    )
    count = value(after, "edgefleet_http_request_duration_seconds_count", route=route)
    assert count is not None and count >= 4

    # An administrator's own token scrapes too.
    admin_view, _ = scrape(server.url, token=ADMIN_TOKEN)
    assert value(admin_view, "edgefleet_devices", project="default", online="true") == 1.0


def test_metrics_refuse_everyone_else(fleet: Fleet) -> None:
    server = fleet.start_server(extra_args=["--metrics-token", SCRAPE_TOKEN])
    with server.client() as admin:
        admin.create_user("watcher")
        admin.add_member("default", "watcher", "viewer")
        viewer = admin.create_token("watcher", user="watcher")["token"]

    def get(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)

    anonymous = get(None)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert "metrics token" in anonymous.json()["detail"]
    wrong = get(SCRAPE_TOKEN + "x")
    assert wrong.status_code == 401, wrong.text
    assert "edgefleet_" not in wrong.text
    refused = get(viewer)
    assert refused.status_code == 403, refused.text
    assert "only administrators or the --metrics-token" in refused.json()["detail"]
    assert "edgefleet_devices" not in refused.text
    assert get(SCRAPE_TOKEN).status_code == 200


def test_metrics_without_a_scrape_token_take_only_admins(fleet: Fleet) -> None:
    """No --metrics-token set: an empty or made-up bearer is not a way in."""
    server = fleet.start_server()
    for token in ("", SCRAPE_TOKEN):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
        assert response.status_code == 401, response.text
    samples, _ = scrape(server.url, token=ADMIN_TOKEN)
    assert value(samples, "edgefleet_agents_connected") == 0.0
