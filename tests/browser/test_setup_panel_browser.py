"""The dashboard's setup panel in real headless Chromium: log in, "Run checks now", read it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from webapp.extensions import db
from webapp.models import SetupCheck
from webapp.views.auth import create_user

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
EMAIL, PASSWORD = "admin@example.com", "correct horse battery"


@pytest.fixture
def live_url(make_app) -> Iterator[str]:
    app: Flask = make_app()
    with app.app_context():
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_admin_runs_the_setup_checks_from_the_dashboard(
    live_url: str, browser: Browser, stripe, mirakl
) -> None:
    create_user(EMAIL, PASSWORD)
    page = browser.new_page()
    page.goto(f"{live_url}/console/")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    panel = page.locator("#setup-panel")
    assert "never checked" in panel.inner_text()

    page.click("#run-setup-checks")
    page.wait_for_selector("#setup-outcome")
    assert page.locator("#setup-outcome").inner_text() == "FAIL"
    assert "(console)" in page.locator("#setup-checked-at").inner_text()
    failed = page.locator("#setup-results tr.table-danger")
    assert failed.count() == 2  # no webhook endpoint registered in the emptied sandbox
    assert "run `flask --app wsgi connector register-webhooks`" in failed.first.inner_text()
    assert "Setup checks: 2 failed" in page.content()
    row = db.session.execute(select(SetupCheck)).scalar_one()
    assert row.trigger == "console"
