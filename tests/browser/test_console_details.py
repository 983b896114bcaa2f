"""Every money row's detail page opens (the daily digest links to them), in every status."""

from __future__ import annotations

import pytest

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
from webapp.services.ledger import transitions

pytestmark = pytest.mark.browser


def add_rows() -> list[tuple[str, int, str]]:
    """One row per status of every money type: (list endpoint, id, status)."""
    shop = AccountMapping(mirakl_shop_id=1, stripe_account_id="acct_details", payout_enabled=True)
    db.session.add(shop)
    db.session.flush()
    rows = []
    for n, status in enumerate(TransferStatus):
        row = StripeTransfer(
            type=TransferType.PRODUCT_ORDER.value, mirakl_id=f"D-{n}-A", mirakl_shop_id=1,
            account_mapping_id=shop.id, amount=1000 + n, currency="eur",
            transfer_id="tr_done" if status == TransferStatus.CREATED else None,
        )  # fmt: skip
        rows.append(("transfers", row, status))
    for n, status in enumerate(RefundStatus):
        row = StripeRefund(
            mirakl_refund_id=f"R{n}", mirakl_order_id=f"D-{n}-A", amount=100, currency="eur"
        )
        rows.append(("refunds", row, status))
    for n, status in enumerate(PayoutStatus):
        row = StripePayout(
            mirakl_invoice_id=900 + n, mirakl_shop_id=1, account_mapping_id=shop.id,
            amount=5000, currency="eur",
        )  # fmt: skip
        rows.append(("payouts", row, status))
    for n, status in enumerate(PaymentMappingStatus):
        row = PaymentMapping(
            mirakl_commercial_order_id=f"D-{n}", stripe_charge_id=f"ch_details_{n}",
            stripe_amount=1000, currency="eur",
        )  # fmt: skip
        rows.append(("payments", row, status))
    for _, row, status in rows:
        failed = status.value.endswith("FAILED") and not isinstance(row, PaymentMapping)
        first = type(status)(status.value.replace("FAILED", "PENDING")) if failed else status
        transitions.create(row, first, "first", actor="test")
        if failed:
            transitions.transition(row, status, "Stripe refused", actor="money-job")
    db.session.commit()
    return [(endpoint, row.id, status.value) for endpoint, row, status in rows]


def test_the_detail_page_of_every_money_row_in_every_status_opens(live_url, login):
    rows = add_rows()
    page = login()
    for endpoint, row_id, status in rows:
        answer = page.goto(f"{live_url}/console/{endpoint}/details/?id={row_id}")
        assert answer.status == 200, (endpoint, status, answer.status)
        table = page.inner_text("table.table")
        assert status in table, (endpoint, status)
        assert status in page.inner_text("#history"), (endpoint, status)
        retryable = status.endswith(("FAILED", "ON_HOLD")) and endpoint != "payments"
        assert page.locator("button[value=retry]").count() == int(retryable), (endpoint, status)
