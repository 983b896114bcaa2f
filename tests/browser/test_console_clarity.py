"""What used to confuse an operator: stale "queued" badges, red pending shops, two links
called "open link", an ambiguous attempt count, internal row ids, silent waits, wide lists."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from sandbox.mirakl.demo import make_product_order
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_stripe
from webapp.services.ledger import transitions

pytestmark = pytest.mark.browser

REDIS_DOWN = {"REDIS_URL": "redis://127.0.0.1:1/0"}
LONG_REASON = "Insufficient funds in Stripe account. In test mode, you can add funds to your "
"available balance (bypassing your pending balance) by creating a charge with 4000000000000077."


def failed_transfer_to_retry(mirakl, stripe) -> int:
    """A FAILED order transfer that a retry moves back to PENDING (its order and charge exist)."""
    charge = stripe.create_charge(amount=8472, currency="eur")["id"]
    mirakl.add_orders([make_product_order("Q-1-A", transaction_number=charge)])
    account = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key="clarity-account"
    )["id"]
    mapping = AccountMapping(mirakl_shop_id=1, stripe_account_id=account)
    db.session.add(mapping)
    db.session.flush()
    row = StripeTransfer(
        type=TransferType.PRODUCT_ORDER.value, mirakl_id="Q-1-A", mirakl_shop_id=1,
        account_mapping_id=mapping.id, amount=8073, currency="eur", transaction_id=charge,
        transfer_group="Q-1",
    )  # fmt: skip
    transitions.create(row, TransferStatus.PENDING, None, actor="test")
    transitions.transition(row, TransferStatus.FAILED, "Insufficient funds.", actor="money-job")
    db.session.commit()
    return row.id


def flashed(page: Page, level: str) -> str:
    """The flashed messages of one level (the environment banner is not one)."""
    return "\n".join(page.locator(f".alert-{level}:not(#environment-banner)").all_inner_texts())


def retry_row(page: Page, live_url: str, mirakl_id: str) -> None:
    page.goto(f"{live_url}/console/transfers/")
    page.locator("table.model-list tbody tr", has_text=mirakl_id).locator(
        "button.retry-row"
    ).click()
    page.wait_for_load_state()


@pytest.mark.parametrize("console_app", [REDIS_DOWN], indirect=True)
def test_retry_with_redis_down_leaves_no_queued_badge_and_says_when(
    live_url, login, mirakl, stripe
):
    row_id = failed_transfer_to_retry(mirakl, stripe)
    page = login("operator")
    retry_row(page, live_url, "Q-1-A")
    error = flashed(page, "danger")
    assert "could not be queued (Redis unavailable)" in error
    assert re.search(r"process-transfer at \d{4}-\d\d-\d\d \d\d:\d\d UTC", error)
    page.goto(f"{live_url}/console/transfers/")
    cell = page.inner_text("table.model-list tbody tr td.col-status")
    assert "TRANSFER_PENDING" in cell and "queued" not in cell
    db.session.expire_all()
    assert db.session.get(StripeTransfer, row_id).queued_at is None


def test_queued_retry_with_no_worker_says_when_the_job_runs_next(live_url, login, mirakl, stripe):
    failed_transfer_to_retry(mirakl, stripe)
    page = login("operator")
    retry_row(page, live_url, "Q-1-A")
    assert "1 transfer(s) queued for retry." in page.inner_text(".alert-success")
    warning = flashed(page, "warning")
    assert "No worker is running" in warning
    assert re.search(r"process-transfer at \d{4}-\d\d-\d\d \d\d:\d\d UTC", warning)


def test_unfinished_onboarding_is_pending_and_links_say_what_they_open(live_url, login):
    db.session.add_all(
        [
            AccountMapping(
                mirakl_shop_id=11, mirakl_shop_name="Not finished", stripe_account_id="acct_11",
                disabled_reason="requirements.past_due",
                onboarding_url="http://localhost/api/public/onboarding/refresh?token=abc",
            ),
            AccountMapping(
                mirakl_shop_id=12, mirakl_shop_name="Rejected", stripe_account_id="acct_12",
                disabled_reason="rejected.fraud", details_submitted=True,
            ),
            AccountMapping(
                mirakl_shop_id=13, mirakl_shop_name="Done", stripe_account_id="acct_13",
                payout_enabled=True, payin_enabled=True, details_submitted=True,
                onboarding_url="https://connect.stripe.com/express/login/abc",
            ),
        ]
    )  # fmt: skip
    db.session.commit()
    page = login("viewer")
    shops = page.inner_text("#shops-card")
    assert re.search(r"pending\s+1", shops) and re.search(r"disabled\s+1", shops)
    page.goto(f"{live_url}/console/shops/")

    def row(name: str):
        return page.locator("table.model-list tbody tr", has_text=name)

    pending = row("Not finished").locator(".shop-state")
    assert pending.inner_text() == "pending"
    assert "badge-warning" in pending.get_attribute("class")
    assert "requirements.past_due" in row("Not finished").inner_text()
    assert "badge-danger" in row("Rejected").locator(".shop-state").get_attribute("class")
    assert row("Not finished").locator("a.shop-link").inner_text() == "onboarding link"
    assert row("Done").locator("a.shop-link").inner_text() == "Stripe login link"
    assert "open link" not in page.content()


def test_tries_count_stripe_calls_and_messages_name_mirakl_ids(live_url, login):
    failed = StripePayout(mirakl_invoice_id=93117, mirakl_shop_id=1, amount=100, currency="eur")
    done = StripePayout(mirakl_invoice_id=93118, mirakl_shop_id=1, amount=100, currency="eur")
    for row in (failed, done):
        transitions.create(row, PayoutStatus.PENDING, actor="test")
    failed.attempt = done.attempt = 1  # one refusal each (as attempts.record_refusal leaves it)
    transitions.transition(failed, PayoutStatus.FAILED, "refused", actor="money-job")
    transitions.transition(done, PayoutStatus.CREATED, None, actor="money-job")
    db.session.commit()
    page = login("operator")
    page.goto(f"{live_url}/console/payouts/")
    tries = {
        inv: page.locator("table.model-list tbody tr", has_text=inv).locator(".tries")
        for inv in ("93117", "93118")
    }
    assert tries["93117"].inner_text() == "1"  # refused once, not retried yet
    assert tries["93118"].inner_text() == "2"  # refused once, then paid
    page.locator("table.model-list tbody tr", has_text="93118").locator(
        "input.action-checkbox"
    ).check()
    page.click("text=With selected")
    page.click("a.dropdown-item:has-text('Retry')")
    page.wait_for_load_state()
    warning = flashed(page, "warning")
    assert "Invoice 93118: already PAYOUT_CREATED" in warning
    assert "#" not in warning


def long_rows() -> None:
    """Rows with the longest ids and reasons an operator meets."""
    shop = AccountMapping(
        mirakl_shop_id=2001, mirakl_shop_name="A shop with a rather long name",
        stripe_account_id="acct_1NvQ2b2eZvKYlo2C0123456789",
        disabled_reason="requirements.past_due",
        onboarding_url="http://localhost/api/public/onboarding/refresh?token=" + "x" * 40,
    )  # fmt: skip
    db.session.add(shop)
    db.session.flush()
    for n in range(3):
        transfer = StripeTransfer(
            type=TransferType.EXTRA_INVOICES.value, mirakl_id=f"COMMERCIAL-2026-000{n}-A",
            mirakl_shop_id=2001, account_mapping_id=shop.id, amount=123456789, currency="eur",
            transaction_id="ch_3NvQ2b2eZvKYlo2C1abcdefgh",
        )  # fmt: skip
        transitions.create(transfer, TransferStatus.PENDING, actor="test")
        transitions.transition(transfer, TransferStatus.FAILED, LONG_REASON, actor="test")
        refund = StripeRefund(
            mirakl_refund_id=f"10000{n}", mirakl_order_id=f"COMMERCIAL-2026-000{n}-A",
            mirakl_shop_id=2001, amount=123456789, currency="eur",
            transaction_id="ch_3NvQ2b2eZvKYlo2C1abcdefgh",
        )  # fmt: skip
        transitions.create(refund, RefundStatus.PENDING, actor="test")
        transitions.transition(refund, RefundStatus.FAILED, LONG_REASON, actor="test")
        payout = StripePayout(
            mirakl_invoice_id=9311700 + n, mirakl_shop_id=2001, account_mapping_id=shop.id,
            amount=123456789, currency="eur",
        )  # fmt: skip
        transitions.create(payout, PayoutStatus.PENDING, actor="test")
        transitions.transition(payout, PayoutStatus.FAILED, LONG_REASON, actor="test")
        payment = PaymentMapping(
            mirakl_commercial_order_id=f"COMMERCIAL-2026-000{n}",
            stripe_charge_id=f"ch_3NvQ2b2eZvKYlo2C1abcdef{n}", stripe_amount=123456789,
            currency="eur",
        )  # fmt: skip
        transitions.create(payment, PaymentMappingStatus.FAILED, LONG_REASON, actor="test")
    db.session.commit()


@pytest.mark.parametrize("endpoint", ["transfers", "refunds", "payouts", "payments", "shops"])
def test_lists_fit_a_1366_pixel_laptop_screen(live_url, login, endpoint):
    long_rows()
    page = login("operator", width=1366)
    page.goto(f"{live_url}/console/{endpoint}/")
    assert page.locator("table.model-list tbody tr").count() >= 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{endpoint} is {width} px wide"
    if endpoint not in ("payments", "shops"):
        retry = page.locator("button.retry-row").first
        box = retry.bounding_box()
        assert box and box["x"] + box["width"] <= 1366
