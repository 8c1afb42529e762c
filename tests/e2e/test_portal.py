"""The web portal in a real browser (Debian's headless Chromium, driven by
Playwright) against a real server with real agents: sign in, watch the fleet
live, create an application from a Compose file, deploy it by selector,
watch the status grid reach running, open the service through the proxy,
follow its logs, sign out; and a user of no project sees none of it.

Screenshots of the main pages land in docs/screenshots/ (shown in the README).
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import Fleet
from tests.support.browser import NARROW, WIDE, Console, chromium, screenshot
from tests.support.procs import free_port, listening, wait_for

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "portal-admin-password"
MALLORY_PASSWORD = "mallory-password-1"
PAGE = "<h1>hello from the edge</h1>"


def compose(port: int, *, broken: bool = False) -> str:
    """A web service run as a plain process on the device (no engine needed)."""
    script = f"echo '{PAGE}' > index.html && exec {sys.executable} -u -m http.server {port} --bind 127.0.0.1"
    extra = "\n    restart: sometimes" if broken else "\n    restart: unless-stopped"
    return (
        "services:\n"
        "  web:\n"
        "    x-edgefleet-runtime: process\n"
        f"    command: {json.dumps(['sh', '-c', script])}\n"
        f'    ports: ["{port}"]'
        f"{extra}\n"
    )


def sign_in(page: Any, base: str, user: str, password: str, next_path: str = "/") -> None:
    """With the keyboard only: the form is reachable and submits on Enter."""
    page.goto(base + next_path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(base + next_path)


def stat(page: Any, name: str) -> Any:
    return page.locator(f"[data-stat='{name}'] .n")


def stop_workloads(server: Any, port: int) -> None:
    """Process workloads outlive their agent (by design): cancel the jobs so
    the agent stops them before the fixture stops the agent."""
    with server.client() as client:
        for job in client.jobs():
            client.cancel_job(job["id"])
    wait_for(lambda: not listening(port), 30, what="the web service stopped")


def test_portal_end_to_end(fleet: Fleet) -> None:
    server = fleet.start_server()
    with server.client() as client:
        client.set_password("admin", ADMIN_PASSWORD)
        client.create_project("elsewhere")
        client.create_user("mallory", password=MALLORY_PASSWORD)
        client.add_member("elsewhere", "mallory", "owner")
    key = fleet.key(labels={"site": "lab"})
    alpha = fleet.start_agent("alpha", key=key, labels={"role": "web"})
    alpha_id = alpha.wait_enrolled()
    port = free_port()

    try:
        walk_through(fleet, server, key, alpha_id, port)
    finally:
        stop_workloads(server, port)


def walk_through(fleet: Fleet, server: Any, key: str, alpha_id: str, port: int) -> None:
    base = server.url
    with chromium() as browser:
        context = browser.new_context(viewport=WIDE)
        console = Console(context, origin=server.url)
        page = context.new_page()

        # --- sign in; the dashboard follows the fleet without a reload --------------------
        sign_in(page, base, "admin", ADMIN_PASSWORD)
        expect(page.locator("body")).to_have_attribute("data-live-state", "open")
        expect(stat(page, "online")).to_have_text("1", timeout=15_000)
        beta = fleet.start_agent("beta", key=key)
        beta_id = beta.wait_enrolled()
        expect(stat(page, "online")).to_have_text("2", timeout=20_000)
        expect(stat(page, "total")).to_have_text("2")
        expect(page.locator("ul.events")).to_contain_text("device beta connected")

        # --- devices ------------------------------------------------------------------------
        page.get_by_role("link", name="Devices", exact=True).click()
        rows = page.locator("#devices tbody tr")
        expect(rows).to_have_count(2)
        for name in ("alpha", "beta"):
            expect(page.locator(f"tr[data-device='{name}'] .status")).to_contain_text("online")
        expect(page.locator("tr[data-device='alpha'] time")).to_have_text(re.compile(r"\d+ s ago"))
        page.fill("#selector", "role=web")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("alpha")
        page.goto(base + "/devices")
        screenshot(page, "devices")

        page.get_by_role("link", name="alpha").click()
        expect(page).to_have_url(f"{base}/devices/{alpha_id}")
        expect(page.locator("[data-device-status]")).to_contain_text("online")
        page.fill("#labels", "site=lab\nrole=web\nroom=b12")
        page.fill("#metadata", '{"location": "lab bench 3"}')
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".alert.ok")).to_contain_text("saved")
        with server.client() as client:
            device = client.device(alpha_id)
        assert device["labels"] == {"site": "lab", "role": "web", "room": "b12"}
        assert device["metadata"] == {"location": "lab bench 3"}
        # The agent's own log, and a shell on the device through xterm.js.
        page.get_by_role("button", name="Show last 200 lines").click()
        expect(page.locator("[data-logs] .log-output")).not_to_be_empty(timeout=15_000)
        page.get_by_role("button", name="Open console").click()
        expect(page.locator("[data-console]")).to_have_attribute("data-console-state", "open")
        page.keyboard.type("echo portal-$((6*7))")
        page.keyboard.press("Enter")
        expect(page.locator(".xterm-rows")).to_contain_text("portal-42", timeout=15_000)
        page.get_by_role("button", name="Close console").click()
        expect(page.locator("[data-console]")).to_have_attribute("data-console-state", "closed")
        screenshot(page, "device")

        # --- an application from a Compose file; findings next to their line --------------
        page.get_by_role("link", name="Applications", exact=True).click()
        page.fill("#name", "hello")
        page.fill("#version", "1")
        page.fill("#compose", compose(port, broken=True))
        finding = page.locator("#findings .finding[data-line='6']")
        expect(finding).to_contain_text("restart", timeout=10_000)  # checked while typing
        page.get_by_role("button", name="Create application").click()
        expect(page.locator("#findings .finding[data-line='6']")).to_contain_text("sometimes")
        expect(page.locator(".alert.error").first).to_be_visible()
        page.fill("#compose", compose(port))
        expect(page.locator("#findings")).to_contain_text("Valid Compose file")
        page.get_by_role("button", name="Create application").click()
        expect(page.locator("h1")).to_have_text("hello")
        expect(page.locator("#versions tbody tr")).to_have_count(1)

        # --- deploy by selector, with a live preview of the devices it matches --------------
        page.get_by_role("link", name="Deploy 1").click()
        page.fill("#selector", "role=web")
        expect(page.locator("[data-preview-count]")).to_have_attribute("data-preview-count", "1")
        expect(page.locator("#preview .matched")).to_contain_text("alpha")
        expect(page.locator("#preview .matched")).not_to_contain_text("beta")
        page.get_by_role("button", name="Deploy").click()
        expect(page).to_have_url(re.compile(r"/jobs/j"))
        job_id = page.url.rsplit("/", 1)[1]
        page.evaluate(
            "window.__swaps = 0; document.body.addEventListener('htmx:afterSwap',"
            " () => window.__swaps++)"
        )
        cell = page.locator("#job-grid .cell[data-device='alpha']")
        expect(cell).to_have_attribute("data-state", "running", timeout=60_000)
        expect(page.locator(".job-state")).to_contain_text("running", timeout=20_000)
        # the job may be running before the page is drawn (nothing left for an event to
        # change): the grid's own refresh (every 20 s at the latest) must still come
        # polled from here: wait_for_function's string predicate is eval'd in the page,
        # which the portal's CSP (script-src 'self', no 'unsafe-eval') rightly refuses
        deadline = time.monotonic() + 30
        while page.evaluate("window.__swaps") < 1 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert page.evaluate("window.__swaps") >= 1, "the grid never updated by itself"
        assert page.url.endswith(job_id)
        expect(page.locator("#job-grid .cell")).to_have_count(1)  # beta is not role=web

        # --- the service, through the proxy, in a new tab -----------------------------------
        link = cell.get_by_role("link", name=f"Open :{port}")
        # the app's own origin (*.localhost on a loopback server), never the portal's
        own_origin = f"http://{job_id}-{alpha_id}-web-{port}.localhost:{server.port}"
        assert link.get_attribute("href") == own_origin + "/"
        with context.expect_page() as opened:
            link.click()
        app_page = opened.value
        expect(app_page.locator("h1")).to_have_text("hello from the edge", timeout=20_000)

        # --- logs, followed: a new request shows up while we watch --------------------------
        logs = page.locator(".logs .log-output")
        page.get_by_role("button", name="Follow").click()
        expect(page.locator("[data-logs]")).to_have_attribute("data-following", "true")
        expect(logs).to_contain_text("GET / HTTP", timeout=15_000)
        before = logs.inner_text().count("GET /?again")
        app_page.goto(f"{base}/proxy/{job_id}/{alpha_id}/web/{port}/?again")
        expect(app_page.locator("h1")).to_have_text("hello from the edge")
        wait_for(
            lambda: logs.inner_text().count("GET /?again") > before, 15, what="followed log line"
        )
        page.get_by_role("button", name="Stop following").click()
        app_page.close()
        screenshot(page, "job")

        # --- provisioning key: shown once with the exact agent command ----------------------
        page.get_by_role("link", name="Keys", exact=True).click()
        page.fill("#name", "bench")
        page.fill("#labels", "site=bench")
        page.get_by_role("button", name="Create key").click()
        command = page.locator("#agent-command").inner_text()
        assert command.startswith(f"edgefleet agent --server {base} --provisioning-key efk_")
        assert "--state-dir" in command
        screenshot(page, "keys")
        page.reload()
        expect(page.locator("[data-created-key]")).to_have_count(0)
        expect(page.locator("#keys")).to_contain_text("bench")

        # --- the remaining main pages, and the narrow layout --------------------------------
        page.get_by_role("link", name="Applications", exact=True).click()
        screenshot(page, "applications")
        page.get_by_role("link", name="Dashboard").click()
        expect(stat(page, "job-running")).to_have_text("1")
        screenshot(page, "dashboard")
        page.set_viewport_size(NARROW)
        page.goto(f"{base}/jobs/{job_id}")
        expect(page.locator("#job-grid .cell[data-device='alpha']")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"the page scrolls sideways at 390 px ({width} px)"
        screenshot(page, "job-390px")
        page.set_viewport_size(WIDE)

        # --- sign out: the session is revoked, not just forgotten ---------------------------
        session = next(c["value"] for c in context.cookies() if c["name"] == "edgefleet_session")
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(base + "/jobs")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fjobs"))
        with httpx.Client(base_url=base, cookies={"edgefleet_session": session}) as stale:
            assert stale.get("/api/v1/users/me").status_code == 401
        console.check()
        context.close()

        # --- a user of another project sees none of it --------------------------------------
        other = browser.new_context(viewport=WIDE)
        # Hidden things are 404 pages, which the browser reports as failed loads.
        watcher = Console(other, expected=("status of 404",))
        page = other.new_page()
        sign_in(page, base, "mallory", MALLORY_PASSWORD)
        expect(stat(page, "total")).to_have_text("0")
        # Only her own project's events (it was created and she was added to it).
        events = page.locator("ul.events")
        if events.count():
            for hidden in ("alpha", "beta", "hello", job_id, "default"):
                expect(events).not_to_contain_text(hidden)
        page.goto(base + "/devices")
        expect(page.locator("#devices tbody")).not_to_contain_text("alpha")
        expect(page.locator("#devices tbody")).not_to_contain_text("beta")
        page.goto(base + "/apps")
        expect(page.locator("#apps")).not_to_contain_text("hello")
        page.goto(base + "/jobs")
        expect(page.locator("#jobs")).not_to_contain_text(job_id)
        for path in (f"/jobs/{job_id}", f"/devices/{alpha_id}", f"/devices/{beta_id}"):
            response = page.goto(base + path)
            assert response is not None and response.status == 404, path
            expect(page.locator("h1")).to_have_text("Not found")
        response = page.goto(f"{base}/proxy/{job_id}/{alpha_id}/web/{port}/")
        assert response is not None and response.status == 404
        assert "hello from the edge" not in page.content()
        page.goto(base + "/keys")
        expect(page.locator("#keys")).not_to_contain_text("bench")
        watcher.check()
        other.close()
