"""``connector notify-failed-operation``: the daily digest e-mail of failed operations."""

from __future__ import annotations

import pytest

from webapp.extensions import db
from webapp.models import (
    PayoutStatus,
    RefundStatus,
    RefundType,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger import transitions

CONSOLE = "http://connector.test/console"


@pytest.fixture
def mail_app(make_app, smtp):
    application = make_app(
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com, finance@example.com",
        TECHNICAL_ALERT_EMAIL_FROM="connector@example.com",
    )
    with application.app_context():
        yield application


def _transfer(mirakl_id: str, status: TransferStatus, reason: str, **fields) -> StripeTransfer:
    row = StripeTransfer(
        mirakl_id=mirakl_id,
        type=fields.pop("type", TransferType.PRODUCT_ORDER.value),
        amount=fields.pop("amount", 1234),
        currency=fields.pop("currency", "eur"),
        mirakl_shop_id=2001,
        **fields,
    )
    transitions.create(row, TransferStatus.PENDING)
    if status is not TransferStatus.PENDING:
        transitions.transition(row, status, reason)
    return row


def _seed_failures() -> dict[str, int]:
    transfer = _transfer("1234-A", TransferStatus.FAILED, "Stripe refused: insufficient funds")
    jpy = _transfer(
        "9-B", TransferStatus.FAILED, "No connected account", amount=5000, currency="jpy"
    )
    _transfer("1234-C", TransferStatus.ON_HOLD, "Waiting for the payment")  # not a failure
    _transfer("1234-D", TransferStatus.PENDING, "")
    refund = StripeRefund(
        mirakl_refund_id="1105",
        mirakl_order_id="1234-A",
        type=RefundType.PRODUCT_ORDER.value,
        amount=550,
        currency="eur",
    )
    transitions.create(refund, RefundStatus.PENDING)
    transitions.transition(refund, RefundStatus.FAILED, "charge_already_refunded")
    payout = StripePayout(mirakl_invoice_id=77, amount=99999, currency="usd", mirakl_shop_id=2002)
    transitions.create(payout, PayoutStatus.PENDING)
    transitions.transition(payout, PayoutStatus.FAILED, "balance_insufficient: not enough money")
    aborted = StripePayout(mirakl_invoice_id=78, amount=10, currency="usd")
    transitions.create(aborted, PayoutStatus.ABORTED, "Amount is zero or negative")
    db.session.commit()
    return {"transfer": transfer.id, "jpy": jpy.id, "refund": refund.id, "payout": payout.id}


def test_digest_lists_every_failed_operation(mail_app, smtp):
    ids = _seed_failures()

    result = mail_app.test_cli_runner().invoke(args=["connector", "notify-failed-operation"])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "failed operations: 2 transfers, 1 refunds, 1 payouts, digest e-mailed\n"
    )
    [mail] = smtp.messages
    assert mail["Subject"] == "[Stripe-Mirakl] Transfer failed"
    assert mail["From"] == "connector@example.com"
    for header in ("To", "X-Envelope-To"):
        assert sorted(mail[header].split(", ")) == ["finance@example.com", "ops@example.com"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        for expected in (
            "4 failed operations to look at",
            "Transfers (2)",
            "Refunds (1)",
            "Payouts (1)",
            "1234-A (shop 2001)",
            "12.34 EUR",
            "5000 JPY",
            "refund 1105 (order 1234-A)",
            "5.50 EUR",
            "invoice 77 (shop 2002)",
            "999.99 USD",
            "TRANSFER_FAILED",
            "REFUND_FAILED",
            "PAYOUT_FAILED",
            "TRANSFER_PRODUCT_ORDER",
            "Stripe refused: insufficient funds",
            "charge_already_refunded",
            "balance_insufficient: not enough money",
            f"{CONSOLE}/transfers/details/?id={ids['transfer']}",
            f"{CONSOLE}/transfers/details/?id={ids['jpy']}",
            f"{CONSOLE}/refunds/details/?id={ids['refund']}",
            f"{CONSOLE}/payouts/details/?id={ids['payout']}",
        ):
            assert expected in part, expected
        for absent in ("1234-C", "1234-D", "invoice 78"):
            assert absent not in part, absent
    assert f'<a href="{CONSOLE}/payouts/details/?id={ids["payout"]}">' in html


def test_nothing_failed_sends_no_email(mail_app, smtp):
    _transfer("1234-C", TransferStatus.ON_HOLD, "Waiting for the payment")
    db.session.commit()

    result = mail_app.test_cli_runner().invoke(args=["connector", "notify-failed-operation"])

    assert result.exit_code == 0
    assert result.output == (
        "failed operations: 0 transfers, 0 refunds, 0 payouts, nothing to report, no e-mail\n"
    )
    assert smtp.messages == []


def test_mail_disabled_says_so(make_app, smtp):
    application = make_app(TECHNICAL_ALERT_EMAIL="ops@example.com")  # MAILER_DSN=smtp://null
    with application.app_context():
        _seed_failures()
        result = application.test_cli_runner().invoke(args=["connector", "notify-failed-operation"])
    assert result.exit_code == 0
    assert "digest NOT e-mailed (mail disabled, no recipient or send error)" in result.output
    assert smtp.messages == []


def test_smtp_down_is_logged_not_fatal(make_app, smtp):
    application = make_app(MAILER_DSN="smtp://127.0.0.1:9", TECHNICAL_ALERT_EMAIL="ops@example.com")
    with application.app_context():
        _seed_failures()
        result = application.test_cli_runner().invoke(args=["connector", "notify-failed-operation"])
    assert result.exit_code == 0
    assert "digest NOT e-mailed" in result.output
