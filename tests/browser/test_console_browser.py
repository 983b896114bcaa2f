"""The console in real headless Chromium (Debian ``chromium`` driven by Playwright).

The app is served over HTTP by werkzeug in a thread; Stripe and Mirakl are the sandboxes;
money jobs run in an RQ worker (burst) in the test's app context. Set
``UPDATE_SCREENSHOTS=1`` to refresh the screenshots in ``docs/screenshots``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from sandbox.mirakl.demo import make_product_order
from tests.browser.conftest import save_screenshot
from tests.seeding import sandbox
from webapp.extensions import db
from webapp.jobs.scheduler import RUN_ID_PREFIX
from webapp.jobs.worker import make_worker
from webapp.models import (
    AccountMapping,
    JobRun,
    PayoutStatus,
    StripePayout,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.access.users import create_user
from webapp.services.clients import get_stripe
from webapp.services.ledger import transitions
from webapp.services.queueing.queues import JOBS_QUEUE, MONEY_QUEUE, get_queue

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "ops@example.com", "correct horse battery"


def failed_transfer(order_id: str, mapping: AccountMapping, charge: str) -> int:
    """A product-order transfer Stripe refused earlier (as the money job records it)."""
    row = StripeTransfer(
        type=TransferType.PRODUCT_ORDER.value, mirakl_id=order_id, mirakl_shop_id=1,
        account_mapping_id=mapping.id, amount=8073, currency="eur", transaction_id=charge,
        transfer_group=order_id[:-2],
    )  # fmt: skip
    transitions.create(row, TransferStatus.PENDING, None, actor="test")
    transitions.transition(
        row, TransferStatus.FAILED, "Insufficient funds in Stripe account.", actor="money-job"
    )
    db.session.commit()
    return row.id


def statuses() -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.execute(select(StripeTransfer.mirakl_id, StripeTransfer.status))
    return dict(rows.all())


def run_worker(*queues: str) -> None:
    make_worker(queues).work(burst=True)
    db.session.expire_all()


def row_of(page: Page, mirakl_id: str):
    return page.locator("table.model-list tbody tr", has_text=mirakl_id)


def add_demo_rows(mapping: AccountMapping) -> None:
    """A few more rows so the screenshots show every kind of status."""
    held = StripeTransfer(
        type=TransferType.PRODUCT_ORDER.value, mirakl_id="B-4-A", mirakl_shop_id=9,
        amount=2599, currency="eur",
    )  # fmt: skip
    transitions.create(held, TransferStatus.ON_HOLD, "Cannot find Stripe account for shop ID 9")
    refused = StripeTransfer(
        type=TransferType.SUBSCRIPTION.value, mirakl_id="2041", mirakl_shop_id=1,
        account_mapping_id=mapping.id, amount=999, currency="eur",
    )  # fmt: skip
    transitions.create(refused, TransferStatus.PENDING)
    transitions.transition(
        refused, TransferStatus.FAILED, "Insufficient funds in Stripe account.", actor="money-job"
    )
    payout = StripePayout(
        mirakl_invoice_id=2041, mirakl_shop_id=1, account_mapping_id=mapping.id, amount=15230,
        currency="eur",
    )  # fmt: skip
    transitions.create(payout, PayoutStatus.ON_HOLD, "Payouts are disabled for this account")
    db.session.add(AccountMapping(mirakl_shop_id=2, mirakl_shop_name="Shop 2",
                                  stripe_account_id="acct_pending_demo"))  # fmt: skip
    db.session.commit()


def test_operator_retries_failed_transfers_and_runs_a_job(
    console_app, live_url, browser, mirakl, stripe, tmp_path
):
    create_user(EMAIL, PASSWORD)
    account = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key="browser-test-account"
    )["id"]
    sandbox().ready_account(account)
    mapping = AccountMapping(
        mirakl_shop_id=1, mirakl_shop_name="Shop 1", stripe_account_id=account,
        payout_enabled=True, payin_enabled=True, details_submitted=True,
    )  # fmt: skip
    db.session.add(mapping)
    db.session.commit()
    ids = {}
    for order_id in ("B-1-A", "B-2-A", "B-3-A"):
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        mirakl.add_orders([make_product_order(order_id, transaction_number=charge)])
        ids[order_id] = failed_transfer(order_id, mapping, charge)

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())

    # Anonymous: sent to the login page.
    page.goto(f"{live_url}/console/")
    assert "/console/login" in page.url
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/console/")

    # Dashboard: the environment and the failed transfers.
    assert "Stripe TEST mode" in page.inner_text("#environment-banner")
    assert "sk_test" not in page.content()
    transfers_card = page.inner_text("#transfers-card")
    assert "TRANSFER_FAILED" in transfers_card and "3" in transfers_card
    assert "242.19 EUR (3)" in page.inner_text("#money-at-risk")

    # Filter the failed transfers (the dashboard's link uses the list's status filter).
    page.click("#transfers-card >> text=TRANSFER_FAILED")
    page.wait_for_url("**/console/transfers/?flt0_status_equals=TRANSFER_FAILED")
    assert page.locator("table.model-list tbody tr").count() == 3
    assert "Insufficient funds in Stripe account." in row_of(page, "B-1-A").inner_text()

    # Retry one: it is re-evaluated, queued, then CREATED once a worker ran.
    row_of(page, "B-1-A").locator("button.retry-row").click()
    page.wait_for_load_state()
    assert "1 transfer(s) queued for retry." in page.inner_text(".alert-success")
    assert page.locator("table.model-list tbody tr").count() == 2
    page.goto(f"{live_url}/console/transfers/")
    first = row_of(page, "B-1-A").inner_text()
    assert "TRANSFER_PENDING" in first and "queued" in first
    assert get_queue(MONEY_QUEUE).count == 1
    assert stripe.objects("transfers") == []

    run_worker(MONEY_QUEUE)
    assert statuses()["B-1-A"] == "TRANSFER_CREATED"
    page.reload()
    first = row_of(page, "B-1-A")
    assert "TRANSFER_CREATED" in first.inner_text()
    transfer_id = db.session.get(StripeTransfer, ids["B-1-A"]).transfer_id
    link = first.locator(f"a:has-text('{transfer_id}')")
    assert link.get_attribute("href") == (
        f"https://dashboard.stripe.com/test/connect/transfers/{transfer_id}"
    )
    # A CREATED row has no Retry button.
    assert first.locator("button.retry-row").count() == 0

    # Bulk retry of the two others.
    page.goto(f"{live_url}/console/transfers/?flt0_status_equals=TRANSFER_FAILED")
    page.check("input.action-rowtoggle")
    page.click("text=With selected")
    page.click("a.dropdown-item:has-text('Retry')")
    page.wait_for_load_state()
    assert "2 transfer(s) queued for retry." in page.inner_text(".alert-success")
    run_worker(MONEY_QUEUE)
    assert set(statuses().values()) == {"TRANSFER_CREATED"}
    sent = stripe.objects("transfers")
    assert sorted(t["metadata"]["miraklId"] for t in sent) == ["B-1-A", "B-2-A", "B-3-A"]
    assert {t["destination"] for t in sent} == {account}

    # The detail page tells the row's story.
    page.goto(f"{live_url}/console/transfers/details/?id={ids['B-2-A']}")
    history = page.inner_text("#history")
    assert "TRANSFER_FAILED" in history and "TRANSFER_CREATED" in history
    assert EMAIL in history

    # Run a job now: queued in RQ, run by a worker, shown on the dashboard.
    page.goto(f"{live_url}/console/jobs/")
    page.click("button.run-now[data-job='process-transfer']")
    page.wait_for_load_state()
    assert "process-transfer queued" in page.inner_text(".alert-success")
    assert get_queue(JOBS_QUEUE).job_ids == [f"{RUN_ID_PREFIX}process-transfer"]
    run_worker(JOBS_QUEUE)
    run = db.session.execute(select(JobRun)).scalar_one()
    assert (run.job, run.trigger, run.outcome) == ("process-transfer", "console", "succeeded")
    assert len(stripe.objects("transfers")) == 3  # nothing paid twice

    # Screenshots for docs/console.md, with a few more demo rows.
    add_demo_rows(mapping)
    page.goto(f"{live_url}/console/")
    assert "succeeded" in page.inner_text("#last-runs")
    save_screenshot(page, tmp_path, "dashboard.png")
    page.goto(f"{live_url}/console/transfers/")
    save_screenshot(page, tmp_path, "transfers.png")

    # Log out: the console is closed again.
    page.click("#logout")
    page.wait_for_url("**/console/login")
    page.goto(f"{live_url}/console/transfers/")
    assert "/console/login" in page.url
