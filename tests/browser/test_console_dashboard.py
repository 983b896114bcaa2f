"""Dashboard charts (server-side SVG), in Chromium."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.browser.conftest import save_screenshot
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    OperationEvent,
    PayoutStatus,
    StripePayout,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger import transitions

pytestmark = pytest.mark.browser


def paid(mirakl_id: str, amount: int, currency: str, days_ago: int) -> None:
    row = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id=mirakl_id,
                         mirakl_shop_id=1, amount=amount, currency=currency)  # fmt: skip
    transitions.create(row, TransferStatus.PENDING, actor="test")
    transitions.transition(row, TransferStatus.CREATED, None, actor="test")
    db.session.flush()
    db.session.execute(
        update(OperationEvent)
        .where(OperationEvent.operation == "transfer", OperationEvent.operation_id == row.id)
        .values(created_at=utcnow() - timedelta(days=days_ago))
    )


def test_charts_show_money_and_failures_per_day_for_7_and_30_days(live_url, login, tmp_path):
    paid("C-1-A", 8073, "eur", 0)
    paid("C-2-A", 1000, "eur", 1)
    paid("C-3-A", 500, "jpy", 0)
    paid("C-4-A", 9999, "eur", 20)  # only in the 30-day window
    payout = StripePayout(mirakl_invoice_id=1, mirakl_shop_id=1, amount=100, currency="eur")
    transitions.create(payout, PayoutStatus.PENDING, actor="test")
    transitions.transition(payout, PayoutStatus.FAILED, "bank refused", actor="test")
    db.session.commit()
    page = login("viewer")
    charts = page.locator("#charts .card")
    titles = charts.locator(".card-header").all_inner_texts()
    assert titles == [
        "Money transferred per day (EUR)",
        "Money transferred per day (JPY)",
        "Failures per day",
    ]
    eur = charts.nth(0).locator("svg rect.bar")
    assert eur.count() == 7
    tips = charts.nth(0).locator("svg rect.bar title").all_text_contents()
    today = utcnow().date()
    assert tips[-1] == f"{today.isoformat()}: 80.73 EUR"
    assert tips[-2] == f"{(today - timedelta(days=1)).isoformat()}: 10.00 EUR"
    assert f"{today.isoformat()}: 500 JPY" in charts.nth(1).inner_html()
    assert f"{today.isoformat()}: 1" in charts.nth(2).inner_html()  # the failed payout
    page.click("a.chart-window:has-text('30 days')")
    page.wait_for_load_state()
    month = page.locator("#charts .card").nth(0)
    assert month.locator("svg rect.bar").count() == 30
    assert "99.99 EUR" in month.inner_html()
    assert "Per day, last 30 days" in page.inner_text("#charts-title")
    save_screenshot(page, tmp_path, "dashboard-charts.png")
    assert page.locator("script[src^='http']").count() == 0  # nothing from a CDN
