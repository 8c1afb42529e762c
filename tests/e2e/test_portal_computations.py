"""The Computations and Datasets pages in a real browser (headless Chromium):
three agents offer a dataset with a privacy budget; an analyst sees each
device's policy (never a value), asks a differentially private mean through the
form, watches its rounds until it finishes, sees participants and the epsilon spent, and the
Datasets page then shows that epsilon taken from every device's budget."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import Fleet
from tests.support.browser import WIDE, Console, chromium, screenshot
from tests.support.procs import wait_for

pytestmark = pytest.mark.slow

PASSWORD = "analyst-password-1"
NAMES = ["fig", "kiwi", "lime"]


def test_ask_and_watch_a_private_computation(fleet: Fleet, tmp_path: Path) -> None:
    server = fleet.start_server()
    with server.client() as client:
        client.set_password("admin", PASSWORD)
    key = fleet.key()
    rng = random.Random(4)
    cells: list[str] = []
    for name in NAMES:
        csv = tmp_path / f"{name}.csv"
        values = [f"{rng.uniform(10, 30):.6f}" for _ in range(25)]
        cells += values
        csv.write_text("temp,site\n" + "".join(f"{v},{rng.choice('ab')}\n" for v in values))
        # one device takes its time before masking, so the page shows a round in progress
        slow = "delay-masked:4" if name == NAMES[0] else None
        agent = fleet.start_agent(name, key=key, fed_fault=slow)
        done = subprocess.run(
            [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", "air", str(csv),
             "--state-dir", str(agent.state_dir), "--dp-epsilon", "2", "--query-budget", "10/1d"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        agent.wait_enrolled()
    with server.client() as client:
        wait_for(lambda: len(client.datasets(dataset="air")) == 3, 30, what="three datasets")

    base = server.url
    with chromium() as browser:
        context = browser.new_context(viewport=WIDE)
        console = Console(context, origin=base)
        page = context.new_page()
        page.goto(base + "/datasets")
        page.locator("#username").fill("admin")
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        expect(page).to_have_url(base + "/datasets")

        # what each device offers and its policy, never a value
        rows = page.locator("#datasets tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.first.locator("[data-privacy]")).to_contain_text("ε 0.0 of 2.0 spent")
        expect(rows.first.locator("[data-privacy]")).to_contain_text("10 per 86400 s")
        text = page.content()
        assert not any(cell in text for cell in cells)

        # a malformed filter is refused naming the field, the form keeps what was typed
        page.get_by_role("link", name="Computations", exact=True).first.click()
        page.locator("summary", has_text="Ask a computation").click()
        page.locator("#dataset").fill("air")
        page.locator("#op").select_option("mean")
        page.locator("#column").fill("temp")
        page.locator("#where").fill("site LIKE a")
        page.get_by_role("button", name="Compute").click()
        expect(page.locator(".alert.error")).to_contain_text("where")
        expect(page.locator("#dataset")).to_have_value("air")

        # a differentially private mean, asked through the form and watched live
        page.locator("#where").fill("temp >= 0")
        page.locator("#epsilon").fill("0.5")
        page.locator("#bounds").fill("temp=0:50")
        page.get_by_role("button", name="Compute").click()
        expect(page).to_have_url(re.compile(r"/computations/f"))
        expect(page.locator("[data-round]")).to_contain_text("masked", timeout=10_000)
        expect(page.locator("[data-state]")).to_have_attribute("data-state", "done", timeout=30_000)
        expect(page.locator("[data-participant]")).to_have_count(3)
        expect(page.locator("[data-epsilon]")).to_contain_text("0.5")
        expect(page.locator("[data-epsilon]")).to_contain_text("Laplace noise")
        expect(page.locator("#parties tbody tr")).to_have_count(3)
        screenshot(page, "computation")

        # the budget is spent on every device, as they report it
        with server.client() as client:
            wait_for(
                lambda: all(
                    d["privacy"]["epsilon_spent"] == 0.5 for d in client.datasets(dataset="air")
                ),
                20,
                what="three devices reporting epsilon 0.5 spent",
            )
        page.goto(base + "/datasets")
        for i in range(3):
            expect(rows.nth(i).locator("[data-privacy]")).to_contain_text("ε 0.5 of 2.0 spent")
        console.check()
