"""The order timeline and the shop page in Chromium: one search box, one story."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import Page

from sandbox.mirakl.demo import make_shop
from tests.browser.conftest import save_screenshot
from webapp.clock import utcnow
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
    WebhookEvent,
)
from webapp.services.clients import get_stripe
from webapp.services.ledger import transitions

pytestmark = pytest.mark.browser

CHARGE, REFUND, REVERSAL, TRANSFER, PAYOUT = (
    "ch_story", "re_story", "trr_story", "tr_story", "po_story",
)  # fmt: skip


def story(account: str) -> AccountMapping:
    """Order T-1 paid by ch_story, split to shop 1 (T-1-A: refused, then aborted by an
    operator; T-1-B: paid), refunded (R-77, reversed), and invoice 5001 paid out."""
    shop = AccountMapping(
        mirakl_shop_id=1, mirakl_shop_name="Story shop", stripe_account_id=account,
        disabled_reason="requirements.past_due",
        onboarding_url="http://localhost/api/public/onboarding/refresh?token=old",
    )  # fmt: skip
    db.session.add(shop)
    db.session.flush()
    payment = PaymentMapping(mirakl_commercial_order_id="T-1", stripe_charge_id=CHARGE,
                             stripe_amount=20000, currency="eur",
                             mirakl_debit_status="OK")  # fmt: skip
    transitions.create(payment, PaymentMappingStatus.TO_CAPTURE, actor="webhook")
    transitions.transition(payment, PaymentMappingStatus.CAPTURED, None, actor="money-job")
    common = dict(account_mapping_id=shop.id, mirakl_shop_id=1, currency="eur",
                  transaction_id=CHARGE, transfer_group="T-1")  # fmt: skip
    refused = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id="T-1-A",
                             amount=8000, **common)  # fmt: skip
    transitions.create(refused, TransferStatus.PENDING, actor="process-transfer")
    transitions.transition(refused, TransferStatus.FAILED, "Insufficient funds", actor="job")
    paid = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id="T-1-B",
                          amount=9000, transfer_id=TRANSFER, **common)  # fmt: skip
    transitions.create(paid, TransferStatus.PENDING, actor="process-transfer")
    transitions.transition(paid, TransferStatus.CREATED, None, actor="money-job")
    refund = StripeRefund(mirakl_refund_id="R-77", mirakl_order_id="T-1-B",
                          mirakl_commercial_order_id="T-1", mirakl_shop_id=1, amount=1500,
                          currency="eur", transaction_id=CHARGE, stripe_refund_id=REFUND,
                          mirakl_validation_time=utcnow() + timedelta(seconds=1))  # fmt: skip
    transitions.create(refund, RefundStatus.PENDING, actor="process-refund")
    transitions.transition(refund, RefundStatus.CREATED, None, actor="money-job")
    reversal = StripeTransfer(type=TransferType.REFUND.value, mirakl_id="R-77", amount=1500,
                              transfer_id=REVERSAL, **common)  # fmt: skip
    transitions.create(reversal, TransferStatus.PENDING, actor="process-refund")
    transitions.transition(reversal, TransferStatus.CREATED, None, actor="money-job")
    payout = StripePayout(mirakl_invoice_id=5001, mirakl_shop_id=1, account_mapping_id=shop.id,
                          amount=4000, currency="eur", payout_id=PAYOUT)  # fmt: skip
    transitions.create(payout, PayoutStatus.PENDING, actor="process-payout")
    transitions.transition(payout, PayoutStatus.CREATED, None, actor="money-job")
    usd = StripePayout(mirakl_invoice_id=5002, mirakl_shop_id=1, account_mapping_id=shop.id,
                       amount=700, currency="usd", payout_id="po_usd")  # fmt: skip
    transitions.create(usd, PayoutStatus.CREATED, actor="process-payout")
    event = {"data": {"object": {"id": account, "charges_enabled": False,
             "payouts_enabled": False, "details_submitted": False,
             "requirements": {"disabled_reason": "requirements.past_due",
                              "currently_due": ["external_account"]}}}}  # fmt: skip
    db.session.add(WebhookEvent(stripe_event_id="evt_story", type="account.updated",
                                endpoint="sellers", account=account, payload=json.dumps(event),
                                status="processed"))  # fmt: skip
    db.session.commit()
    return shop


def search(page: Page, text: str) -> None:
    page.fill("#top-search input[name=q]", text)
    page.press("#top-search input[name=q]", "Enter")
    page.wait_for_load_state()


def test_one_search_box_tells_the_whole_story(live_url, login, stripe, mirakl, tmp_path):
    story("acct_story")
    page = login("operator")
    # An operator aborts the refused transfer from its detail page (it joins the story).
    page.goto(f"{live_url}/console/transfers/?search=T-1-A")
    page.locator("table.model-list tbody tr", has_text="T-1-A").locator(
        "a[title='View Record']"
    ).click()
    page.fill("form input[name=reason]", "customer cancelled the line")
    page.click("button[value=abort]")
    page.wait_for_load_state()

    search(page, "T-1-A")
    timeline = page.inner_text("#timeline")
    for expected in (
        "Payment ch_story of order T-1", "to_capture → captured", "PA01 sent for order T-1",
        "Transfer for order T-1-A", "TRANSFER_PENDING → TRANSFER_FAILED: Insufficient funds",
        "Notification transfer.failed", "abort on order T-1-A",
        "customer cancelled the line", "Transfer for order T-1-B", "Refund R-77 of order T-1-B",
        "PA02 sent for refund R-77", "Reversal for refund R-77",
    ):  # fmt: skip
        assert expected in timeline, expected
    rows = page.locator("#timeline tbody tr").all_inner_texts()
    whens = [row.split("\t")[0] for row in rows]
    assert whens == sorted(whens)
    save_screenshot(page, tmp_path, "timeline.png")
    assert page.locator("a.stripe-link", has_text=TRANSFER).get_attribute("href") == (
        f"https://dashboard.stripe.com/test/connect/transfers/{TRANSFER}"
    )
    assert page.locator("a.stripe-link", has_text=CHARGE).get_attribute("href") == (
        f"https://dashboard.stripe.com/test/payments/{CHARGE}"
    )
    # Every way in leads to the same story.
    for query in (CHARGE, TRANSFER, REVERSAL, REFUND, "R-77", "T-1"):
        search(page, query)
        assert "Transfer for order T-1-A" in page.inner_text("#timeline"), query
    search(page, PAYOUT)
    assert "Payout of invoice 5001" in page.inner_text("#timeline")
    assert page.locator("a.stripe-link", has_text=PAYOUT).get_attribute("href") == (
        f"https://dashboard.stripe.com/acct_story/test/payouts/{PAYOUT}"
    )
    search(page, "no-such-order")
    assert "Nothing found" in page.inner_text("#timeline-empty")
    # A shop id or a connected account opens the shop page.
    for query in ("1", "acct_story"):
        search(page, query)
        assert page.url.endswith("/console/shop/1"), query


def test_the_shop_page_shows_state_history_link_and_money(
    live_url, login, stripe, mirakl, tmp_path
):
    account = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key="shop-page-account"
    )["id"]
    mirakl.add_shops([make_shop(1)])
    story(account)
    page = login("operator")
    page.goto(f"{live_url}/console/shop/1")
    state = page.inner_text("#shop-state")
    assert "pending" in state and "requirements.past_due" in state
    assert "Onboarding link" in state
    assert (
        "charges off, payouts off, details not submitted, disabled_reason "
        "requirements.past_due, due: external_account" in page.inner_text("#kyc-history")
    )
    totals = page.inner_text("#shop-totals")
    assert "in\ttransfers\tEUR\t90.00 EUR\t1" in totals
    assert "out\treversals\tEUR\t15.00 EUR\t1" in totals
    assert "out\tpayouts\tEUR\t40.00 EUR\t1" in totals
    assert "out\tpayouts\tUSD\t7.00 USD\t1" in totals
    assert "Payout of invoice 5001" in page.inner_text("#shop-money")
    save_screenshot(page, tmp_path, "shop.png")
    page.click("#shop-state .copy-button")
    assert page.inner_text("#shop-state .copy-button") == "Copied"

    page.click("#new-link")
    page.wait_for_load_state()
    assert "Shop 1: new link made." in page.inner_text(".alert-success")
    link = page.input_value("#shop-link")
    assert link != "http://localhost/api/public/onboarding/refresh?token=old"
    assert "new link by operator-1440@example.com" in page.inner_text("#kyc-history")
