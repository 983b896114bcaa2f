"""Browser fixtures: the console served over HTTP, headless Debian Chromium, a logged-in page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis  # noqa: F401 - see below
import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.live_server import serve
from webapp.services.access.users import create_user

# hypothesis's pytest plugin imports hypothesis lazily, at the end of the session; after
# Playwright's greenlets ran, Python 3.11 can fail that import ("AST constructor recursion
# depth mismatch") and the run errors although every test passed. Importing it first avoids it.

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def save_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """A full-page screenshot; copied to docs/screenshots with ``UPDATE_SCREENSHOTS=1``."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / name)


@pytest.fixture
def console_app(make_app, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app; a test adds settings with ``parametrize("console_app", [{}], indirect=True)``."""
    app = make_app(ENABLE_PRODUCT_PAYMENT_SPLIT="true", **getattr(request, "param", {}))
    with app.app_context():
        yield app


@pytest.fixture
def live_url(console_app: Flask) -> Iterator[str]:
    """The console served over real HTTP on 127.0.0.1."""
    with serve(console_app) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def collect_errors(page: Page, errors: list[str]) -> None:
    """Append the page's script errors and console errors to ``errors``, as they happen."""

    def collect(message: ConsoleMessage) -> None:
        # The browser's own favicon request is no page error.
        if message.type == "error" and not message.location.get("url", "").endswith("favicon.ico"):
            errors.append(f"{page.url}: {message.text}")

    page.on("console", collect)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))


@pytest.fixture
def login(browser: Browser, live_url: str) -> Callable[..., Page]:
    """``login(role)``: a new page logged in as a fresh console user with that role;
    ``login(errors=[])`` also collects the page's errors there, the login pages' included."""

    def open_page(role: str = "admin", width: int = 1440, errors: list[str] | None = None) -> Page:
        email = f"{role}-{width}@example.com"
        create_user(email, PASSWORD, role=role)
        page = browser.new_page(viewport={"width": width, "height": 900})
        if errors is not None:
            collect_errors(page, errors)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{live_url}/console/login")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_url}/console/")
        return page

    return open_page
