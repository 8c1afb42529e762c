"""Device telemetry and logs that outlive the connection (issue 18), with real
processes: a real agent samples its machine every half second, the server
stores and serves the samples, the device page charts them in Chromium;
samples taken while the server is down arrive afterwards exactly once; the
logs of a process workload are shown by ``edgefleet logs`` and the portal
after its agent was killed, marked as stored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import expect

from tests.conftest import Fleet
from tests.support.browser import WIDE, Console, chromium, screenshot
from tests.support.procs import ADMIN_TOKEN, wait_for

PASSWORD = "telemetry-admin-password"
FAST = ["--telemetry-interval", "0.5", "--logs-ship-interval", "0.5"]


def metrics(server: Any, device: str, **params: str) -> list[dict[str, Any]]:
    with server.http() as http:
        response = http.get(f"/api/v1/devices/{device}/metrics", params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def test_telemetry_reaches_the_server_is_charted_and_survives_a_server_outage(
    fleet: Fleet,
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("telly", extra_args=FAST)
    device = agent.wait_enrolled()
    items = wait_for(lambda: (lambda i: i if len(i) >= 4 else None)(metrics(server, device)), 30)
    for item in items:
        assert 0 <= item["cpu"] <= 100
        assert 0 < item["memory"] < 100 and item["memory_total"] > 100 * 2**20
        assert 0 < item["disk"] <= 100 and item["disk_total"] > 0
        assert item["uptime"] > 0 and item["net_rx"] >= 0
        age = datetime.now(UTC) - datetime.fromisoformat(item["time"])
        assert age.total_seconds() < 60
    times = [i["time"] for i in items]
    assert times == sorted(times)

    with server.client() as client:
        client.set_password("admin", PASSWORD)
    with chromium() as browser:
        context = browser.new_context(viewport=WIDE)
        console = Console(context, origin=server.url)
        page = context.new_page()
        sign_in(page, server.url)
        page.goto(f"{server.url}/devices/{device}")
        charts = page.locator(".telemetry figure canvas")
        expect(charts.first).to_be_visible(timeout=15_000)
        assert charts.count() >= 2  # CPU/memory/disk and network (temperature if the host has it)
        expect(page.locator("[data-telemetry-status]")).to_contain_text("CPU")
        screenshot(page, "device-telemetry")
        page.goto(f"{server.url}/fleet/health")
        row = page.locator(f"tr[data-device='{device}']")
        expect(row.locator("meter")).to_have_count(3)
        expect(row).to_contain_text("%")
        screenshot(page, "fleet-health")
        console.check()

    # The server goes away; the agent keeps sampling into its on-disk buffer.
    server.stop()
    outage_start = datetime.now(UTC)
    time.sleep(4)
    outage_end = datetime.now(UTC)
    server.start()

    def outage_filled() -> list[dict[str, Any]] | None:
        got = metrics(server, device, since=outage_start.isoformat())
        during = [i for i in got if datetime.fromisoformat(i["time"]) < outage_end]
        return got if len(during) >= 5 else None

    after = wait_for(outage_filled, 40, what="samples taken during the outage")
    times = [i["time"] for i in after]
    assert len(times) == len(set(times)), "a sample was stored twice"

    def buffer_empty() -> bool:
        with sqlite3.connect(agent.state_dir / "telemetry.db") as db:
            return int(db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]) <= 2

    wait_for(buffer_empty, 20, what="the agent's buffer acknowledged")
    everything = metrics(server, device, since="1h")
    assert len({i["time"] for i in everything}) == len(everything)
    downsampled = metrics(server, device, since="1h", step="1m")
    assert 1 <= len(downsampled) <= 3
    assert 0 <= sum(i["samples"] for i in downsampled) - len(everything) <= 4  # a few newer ones

    table = cli(server, "devices", "metrics", "telly", "--step", "1m")
    assert table.returncode == 0, table.stderr
    assert "CPU" in table.stdout and "%" in table.stdout
    bad = cli(server, "devices", "metrics", "telly", "--step", "soon")
    assert bad.returncode != 0 and "step" in bad.stderr and "Traceback" not in bad.stderr


def cli(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=ADMIN_TOKEN, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "edgefleet", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_logs_of_an_offline_device_in_the_cli_and_the_portal(fleet: Fleet) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("logger", extra_args=FAST)
    device = agent.wait_enrolled()
    script = "import time\nfor i in range(5): print(f'hello-line-{i}', flush=True)\ntime.sleep(600)"
    spec = {
        "services": {
            "talker": {
                "x-edgefleet-runtime": "process",
                "command": [sys.executable, "-c", script],
            }
        }
    }
    with server.client() as client:
        client.set_password("admin", PASSWORD)
        client.create_application("talker", "1", spec=spec)
        job = str(client.create_job("talker", version="1", devices=[device])["id"])
        wait_for(lambda: "hello-line-4" in "".join(client.logs(job, tail=50)), 60)
    time.sleep(3)  # several shipping intervals: the tail reached the server
    agent.kill()
    with server.client() as client:
        wait_for(lambda: not client.device(device)["is_online"], 30, what="device offline")

    shown = cli(server, "logs", job)
    assert shown.returncode == 0, shown.stderr
    assert "stored, device offline" in shown.stdout
    for i in range(5):
        assert f"logger/talker | hello-line-{i}" in shown.stdout
    assert "Traceback" not in shown.stderr

    with chromium() as browser:
        context = browser.new_context(viewport=WIDE)
        page = context.new_page()
        sign_in(page, server.url)
        page.goto(f"{server.url}/jobs/{job}")
        page.click("[data-logs-load]")
        output = page.locator(".log-output")
        expect(output).to_contain_text("stored, device offline", timeout=15_000)
        expect(output).to_contain_text("hello-line-4")
        screenshot(page, "offline-device-logs")
