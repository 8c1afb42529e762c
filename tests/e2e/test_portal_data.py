"""The portal's data page and alerts page in Chromium (issue 18): records two
real agents' workloads sent are plotted per device and averaged across
devices, the filters narrow what is drawn, and the download link returns
exactly the records shown; the alerts page lists the project's rules."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.conftest import Fleet
from tests.e2e.test_data import post, summary, url_probe, workload_url
from tests.support.browser import WIDE, Console, chromium, screenshot
from tests.support.procs import wait_for

PASSWORD = "data-page-admin-password"


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def test_data_page_plots_filters_and_downloads(fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    agents = [fleet.start_agent(name) for name in ("north", "south")]
    devices = [a.wait_enrolled() for a in agents]
    with server.client() as client:
        client.set_password("admin", PASSWORD)
        client.create_application("probe", "1", spec=url_probe(tmp_path))
        job = client.create_job("probe", devices=devices)["id"]
        client.add_alert_rule("box-gone", "device_offline", for_seconds=300)
    for i, device in enumerate(devices):
        wait_for(lambda d=device: (tmp_path / f"url-{d}").exists(), 60, what="workload")
        url = workload_url(tmp_path, device)
        for n in range(6 + i * 2):  # north 6, south 8 records
            body = {"temp": 20 + i * 5 + n, "hum": 40.5 + n, "site": "x"}
            assert post(url + "?stream=env", body).status_code == 201
        assert post(url + "?stream=other", {"volts": 3.3}).status_code == 201
    wait_for(lambda: summary(server, job)["records"] == 16, 60, what="records stored")

    with chromium() as browser:
        context = browser.new_context(viewport=WIDE)
        console = Console(context, origin=server.url)
        page = context.new_page()
        sign_in(page, server.url)
        page.goto(f"{server.url}/data")
        page.select_option("#data-job", job)
        page.click("form.data-filters button[type=submit]")
        expect(page.locator("#data-stream")).to_be_visible()
        page.select_option("#data-stream", "env")
        page.click("form.data-filters button[type=submit]")
        chart = page.locator("#data-chart")
        expect(chart).to_have_attribute("data-plotted", "14", timeout=15_000)
        # one chart per numeric field ("site" is text), a line per device
        expect(page.locator("figure.data-chart canvas")).to_have_count(2)
        temp = page.locator("figure[data-chart='temp']")
        expect(temp.locator(".u-legend .u-series")).to_have_count(3)  # time + 2 devices
        expect(temp.locator(".u-legend")).to_contain_text("north")
        expect(temp.locator(".u-legend")).to_contain_text("south")
        screenshot(page, "data-page-per-device")

        # Filters: one device, one field, averaged.
        page.select_option("#data-device", devices[1])
        page.fill("#data-field", "temp")
        page.select_option("#data-mode", "aggregate")
        page.click("form.data-filters button[type=submit]")
        expect(chart).to_have_attribute("data-plotted", "8", timeout=15_000)
        expect(page.locator("figure.data-chart")).to_have_count(1)
        expect(page.locator(".u-legend")).to_contain_text("mean of all devices")
        screenshot(page, "data-page-aggregate")

        # The CSV link downloads exactly the records shown.
        href = page.locator("a[data-download='csv']").get_attribute("href")
        assert href and f"device={devices[1]}" in href and "stream=env" in href
        answer = page.request.get(f"{server.url}{href}")
        assert answer.status == 200
        rows = list(csv.DictReader(io.StringIO(answer.text())))
        assert len(rows) == 8
        assert {r["device"] for r in rows} == {devices[1]}

        page.goto(f"{server.url}/alerts")
        expect(page.locator("table.alert-rules")).to_contain_text("box-gone")
        expect(page.locator("table.alert-rules")).to_contain_text("offline ≥ 300 s")
        screenshot(page, "alerts-page")
        console.check()
