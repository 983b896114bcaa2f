"""Pure parts of operator notifications and alert e-mails: retries, responses, URLs, e-mails."""

from __future__ import annotations

import pytest

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
from webapp.services.notify.alerts import (
    DIGEST_SUBJECT,
    ENDPOINT_DOWN_SUBJECT,
    DigestSection,
    build_endpoint_down_email,
    build_failed_operations_digest,
    payout_digest_row,
    redact_url,
    refund_digest_row,
    transfer_digest_row,
)
from webapp.services.notify.delivery import evaluate_response, truncate_body
from webapp.services.notify.outbox import max_tries, notification_body, retry_delay

BASE = "https://connector.example.com"


@pytest.mark.parametrize(
    ("tries_done", "delays", "expected"),
    [
        (1, (1, 5, 25), 1.0),
        (2, (1, 5, 25), 5.0),
        (3, (1, 5, 25), 25.0),
        (4, (1, 5, 25), None),  # 3 retries spent: the row fails
        (1, (0, 0, 0), 0.0),
        (3, (0, 0, 0), 0.0),
        (4, (0, 0, 0), None),
        (1, (), None),  # no retries configured: one try only
        (0, (1, 5, 25), None),  # never tried: nothing to wait for
    ],
)
def test_retry_delay(tries_done, delays, expected):
    assert retry_delay(tries_done, delays) == expected


@pytest.mark.parametrize(("delays", "tries"), [((1, 5, 25), 4), ((), 1), ((2,), 2)])
def test_max_tries(delays, tries):
    assert max_tries(delays) == tries


@pytest.mark.parametrize(
    ("status_code", "body", "is_sent", "error"),
    [
        (200, "ok", True, None),
        (201, "", True, None),
        (204, "", True, None),
        (299, "", True, None),
        (301, "moved", False, "HTTP 301 from the notification endpoint"),
        (400, "bad", False, "HTTP 400 from the notification endpoint"),
        (404, "nope", False, "HTTP 404 from the notification endpoint"),
        (500, "boom", False, "HTTP 500 from the notification endpoint"),
        (503, "busy", False, "HTTP 503 from the notification endpoint"),
    ],
)
def test_evaluate_response(status_code, body, is_sent, error):
    result = evaluate_response(status_code, body)
    assert result.is_sent is is_sent
    assert result.error == error
    assert result.status_code == status_code
    assert result.response_body == (None if is_sent else body)


def test_response_body_is_truncated():
    assert truncate_body("x" * 10, limit=10) == "x" * 10
    assert truncate_body("x" * 25, limit=10) == "x" * 10 + "… (15 more)"
    assert truncate_body(None) is None
    assert len(evaluate_response(500, "y" * 5000).response_body) < 2100


def test_notification_body():
    payload = {"miraklShopId": 2001, "stripeUserId": "acct_1"}
    assert notification_body("account.updated", payload) == {
        "type": "account.updated",
        "payload": {"miraklShopId": 2001, "stripeUserId": "acct_1"},
    }


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://ops.example.com/hooks/mirakl", "https://ops.example.com/hooks/mirakl"),
        ("https://user:s3cret@ops.example.com/hook", "https://ops.example.com/hook"),
        ("http://127.0.0.1:8080/n?token=abc&x=1", "http://127.0.0.1:8080/n?token=***&x=***"),
        ("https://u:p@ops.example.com:8443/n?key=k#frag", "https://ops.example.com:8443/n?key=***"),
    ],
)
def test_redact_url(url, safe):
    assert redact_url(url) == safe


def test_endpoint_down_email():
    original = {
        "type": "transfer.failed",
        "payload": {"internalId": 7, "failedReason": "<insufficient funds>"},
    }
    mail = build_endpoint_down_email(
        "https://bob:pw@ops.example.com/notify?token=tok123",
        31,
        4,
        "HTTP 500 from the notification endpoint",
        "Internal <b>error</b>",
        original,
    )
    assert mail.subject == ENDPOINT_DOWN_SUBJECT == "[Stripe-Mirakl] A notification error Occurred!"
    for part in (mail.text, mail.html):
        assert "https://ops.example.com/notify?token=***" in part
        assert "could not reach it after 4 tries" in part
        assert "HTTP 500 from the notification endpoint" in part
        assert "tok123" not in part and "pw@" not in part
        assert "transfer.failed" in part
        assert "notification #31" in part
    # The original JSON, pretty-printed (4-space indent, sorted keys).
    assert '"payload": {\n        "failedReason": "<insufficient funds>",' in mail.text
    assert "Internal <b>error</b>" in mail.text
    # HTML escapes what the endpoint and the payload sent.
    assert "Internal &lt;b&gt;error&lt;/b&gt;" in mail.html
    assert "&lt;insufficient funds&gt;" in mail.html


def test_endpoint_down_email_without_response_body():
    mail = build_endpoint_down_email(
        "http://ops.example.com/n", 2, 1, "ConnectionError: refused", None, {"type": "x"}
    )
    assert "Response body" not in mail.text and "Response body" not in mail.html
    assert "could not reach it after 1 tries" in mail.text


def _transfer(**fields):
    values = dict(
        id=12,
        mirakl_id="1234-A",
        type=TransferType.PRODUCT_ORDER.value,
        amount=1234,
        currency="eur",
        status=TransferStatus.FAILED.value,
        status_reason="Stripe refused: insufficient funds",
        mirakl_shop_id=2001,
    )
    return StripeTransfer(**{**values, **fields})


def _refund(**fields):
    values = dict(
        id=5,
        mirakl_refund_id="1105",
        mirakl_order_id="1234-A",
        type=RefundType.PRODUCT_ORDER.value,
        amount=500,
        currency="jpy",
        status=RefundStatus.FAILED.value,
        status_reason="charge already refunded",
    )
    return StripeRefund(**{**values, **fields})


def _payout(**fields):
    values = dict(
        id=3,
        mirakl_invoice_id=77,
        amount=99999,
        currency="usd",
        status=PayoutStatus.FAILED.value,
        status_reason="account_closed: The bank account has been closed",
        mirakl_shop_id=2002,
    )
    return StripePayout(**{**values, **fields})


@pytest.mark.parametrize(
    ("build", "row", "mirakl", "type_", "amount", "url"),
    [
        (
            transfer_digest_row,
            _transfer(),
            "1234-A (shop 2001)",
            "TRANSFER_PRODUCT_ORDER",
            "12.34 EUR",
            f"{BASE}/console/transfers/details/?id=12",
        ),
        (
            transfer_digest_row,
            _transfer(mirakl_shop_id=None, amount=None),
            "1234-A",
            "TRANSFER_PRODUCT_ORDER",
            "—",
            f"{BASE}/console/transfers/details/?id=12",
        ),
        (
            refund_digest_row,
            _refund(),
            "refund 1105 (order 1234-A)",
            "REFUND_PRODUCT_ORDER",
            "500 JPY",  # zero-decimal currency: minor units are major units
            f"{BASE}/console/refunds/details/?id=5",
        ),
        (
            payout_digest_row,
            _payout(),
            "invoice 77 (shop 2002)",
            "PAYOUT",
            "999.99 USD",
            f"{BASE}/console/payouts/details/?id=3",
        ),
    ],
)
def test_digest_rows(build, row, mirakl, type_, amount, url):
    line = build(row, BASE)
    assert (line.id, line.mirakl, line.type, line.amount, line.url) == (
        row.id,
        mirakl,
        type_,
        amount,
        url,
    )
    assert line.status == row.status
    assert line.reason == row.status_reason


def _section(title, rows, total=None):
    view = title.lower()
    return DigestSection(
        title, tuple(rows), len(rows) if total is None else total, f"{BASE}/console/{view}/"
    )


def test_digest_is_none_when_nothing_failed():
    sections = [_section("Transfers", []), _section("Refunds", []), _section("Payouts", [])]
    assert build_failed_operations_digest(sections) is None


def test_digest_lists_every_failed_operation():
    sections = [
        _section("Transfers", [transfer_digest_row(_transfer(), BASE)]),
        _section("Refunds", [refund_digest_row(_refund(), BASE)]),
        _section("Payouts", [payout_digest_row(_payout(), BASE)], total=130),
    ]
    mail = build_failed_operations_digest(sections)
    assert mail.subject == DIGEST_SUBJECT == "[Stripe-Mirakl] Transfer failed"
    for part in (mail.text, mail.html):
        assert "132 failed operations" in part
        for expected in (
            "Transfers (1)",
            "Refunds (1)",
            "Payouts (130)",
            "12.34 EUR",
            "500 JPY",
            "999.99 USD",
            "1234-A (shop 2001)",
            "refund 1105 (order 1234-A)",
            "invoice 77 (shop 2002)",
            "TRANSFER_FAILED",
            "REFUND_FAILED",
            "PAYOUT_FAILED",
            "Stripe refused: insufficient funds",
            "account_closed: The bank account has been closed",
            "and 129 more",
            f"{BASE}/console/payouts/",
        ):
            assert expected in part, expected
    assert f'<a href="{BASE}/console/transfers/details/?id=12">12</a>' in mail.html
    assert f"{BASE}/console/refunds/details/?id=5" in mail.text
    assert f"{BASE}/console/payouts/details/?id=3" in mail.text


def test_digest_skips_empty_sections():
    sections = [
        _section("Transfers", []),
        _section("Refunds", [refund_digest_row(_refund(), BASE)]),
    ]
    mail = build_failed_operations_digest(sections)
    assert "1 failed operation to look at" in mail.text
    assert "Transfers" not in mail.text and "Transfers" not in mail.html
