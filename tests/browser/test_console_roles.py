"""Roles in the browser: a viewer sees no action, an admin manages users, the audit shows all."""

from __future__ import annotations

import pytest

from tests.browser.conftest import save_screenshot
from webapp.extensions import db
from webapp.models import StripeTransfer, TransferStatus, TransferType
from webapp.services.ledger import transitions

pytestmark = pytest.mark.browser


def failed_transfer() -> None:
    row = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id="R-1-A", amount=100,
                         currency="eur")  # fmt: skip
    transitions.create(row, TransferStatus.PENDING, None, actor="test")
    transitions.transition(row, TransferStatus.FAILED, "refused", actor="test")
    db.session.commit()


def test_a_viewer_reads_but_sees_no_action(live_url, login):
    failed_transfer()
    page = login("viewer")
    page.goto(f"{live_url}/console/transfers/")
    assert "R-1-A" in page.inner_text("table.model-list")
    assert page.locator("button.retry-row").count() == 0
    assert page.locator("text=With selected").count() == 0
    page.goto(f"{live_url}/console/jobs/")
    assert page.locator("button.run-now").count() == 0
    assert page.locator("a:has-text('Users')").count() == 0
    assert page.goto(f"{live_url}/console/users/").status == 403


def test_an_admin_invites_a_user_who_logs_in_and_the_audit_lists_it(
    live_url, login, browser, tmp_path
):
    failed_transfer()
    page = login("admin")
    page.goto(f"{live_url}/console/users/")
    page.fill("#invite-form input[name=email]", "newcomer@example.com")
    page.select_option("#invite-form select[name=role]", "operator")
    page.click("#invite-form button[type=submit]")
    page.wait_for_load_state()
    password = page.input_value("#new-password-value")
    assert len(password) >= 20
    page.click("#new-password .copy-button")
    assert page.inner_text("#new-password .copy-button") == "Copied"
    # Never a real password in the docs' screenshot.
    page.eval_on_selector("#new-password-value", "el => { el.value = '(shown once)'; }")
    save_screenshot(page, tmp_path, "users.png")

    other = browser.new_page()
    other.goto(f"{live_url}/console/login")
    other.fill("#email", "newcomer@example.com")
    other.fill("#password", password)
    other.click("button[type=submit]")
    other.wait_for_url(f"{live_url}/console/")
    other.goto(f"{live_url}/console/transfers/")
    assert other.locator("button.retry-row").count() == 1  # an operator may retry

    page.goto(f"{live_url}/console/audit/")
    audit = page.inner_text("table.model-list")
    for action in ("user_invite", "login"):
        assert action in audit
    assert "newcomer@example.com" in audit
    assert password not in page.content()
    save_screenshot(page, tmp_path, "audit.png")
    assert page.locator("a[title='Edit Record'], a[title='Delete Record']").count() == 0
