"""The dashboard's setup panel in real headless Chromium: log in, "Run checks now", read it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import SetupCheck
from webapp.services.access.users import create_user

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "admin@example.com", "correct horse battery"


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
