"""Headless Chromium for portal tests: Debian's browser (``npx playwright
install`` cannot download one here), a console watcher, and screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Test runs keep their screenshots with the other artifacts; EDGEFLEET_SCREENSHOTS=docs/screenshots
# refreshes the README's pictures on purpose.
SCREENSHOTS = Path(
    os.environ.get("EDGEFLEET_SCREENSHOTS")
    or Path(__file__).resolve().parents[1] / ".artifacts" / "screenshots"
)
WIDE = {"width": 1280, "height": 860}
NARROW = {"width": 390, "height": 844}


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            "Debian's chromium is not installed: run scripts/install-test-deps.sh (make test does)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """Every console error and uncaught exception of the pages of one context."""

    def __init__(
        self, context: Any, expected: tuple[str, ...] = (), origin: str | None = None
    ) -> None:
        self.errors: list[str] = []
        self.expected = expected
        self.origin = origin  # only the portal's own errors (a proxied app's are the app's)
        context.on("page", self.watch)
        for page in context.pages:
            self.watch(page)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: uncaught {exc}"))

    def _console(self, message: Any) -> None:
        url = message.location.get("url", "")
        if self.origin is not None and url and not url.startswith(self.origin):
            return
        if message.type == "error" and not any(e in message.text for e in self.expected):
            self.errors.append(f"{url}: {message.text}")

    def check(self) -> None:
        assert not self.errors, "browser console errors:\n" + "\n".join(self.errors)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
