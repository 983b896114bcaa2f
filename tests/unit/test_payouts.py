"""Seller settlement rules against the reference's worked examples.

See docs/payouts.md and docs/reference-behaviour.md#worked-examples.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from tests.unit.factories import invoice
from webapp.models import TransferType
from webapp.services.payouts.rules import (
    Decision,
    evaluate_invoice_transfer,
    evaluate_payout,
    invoice_transfer_values,
    is_later,
    mirakl_date,
    newest_invoice,
    payout_failure_reason,
)

D = Decimal


def test_reference_invoice_amounts():
    """Worked example: 12.34 / -9.99 / 56.78 / -98.76 → payout 1234, transfers 999 / 5678 / 9876."""
    inv = invoice()
    amounts = {
        type_: evaluate_invoice_transfer(value, "eur", 1, has_account=True).amount
        for type_, value in invoice_transfer_values(inv)
    }
    assert amounts == {
        TransferType.SUBSCRIPTION: 999,
        TransferType.EXTRA_INVOICES: 9876,
        TransferType.EXTRA_CREDITS: 5678,
    }
    payout = evaluate_payout(
        inv.amount_transferred, "eur", 1, has_account=True, payouts_enabled=True
    )
    assert payout == Decision("PAYOUT_PENDING", 1234)


@pytest.mark.parametrize(
    ("case", "value", "currency", "shop", "has_account", "transfer_id", "expected"),
    [
        ("negative fee", "-9.99", "eur", 1, True, None, ("TRANSFER_PENDING", 999, None)),
        ("positive credit", "56.78", "eur", 1, True, None, ("TRANSFER_PENDING", 5678, None)),
        ("positive fee", "98.76", "eur", 1, True, None, ("TRANSFER_PENDING", 9876, None)),
        ("one cent", "-0.01", "eur", 1, True, None, ("TRANSFER_PENDING", 1, None)),
        ("zero-decimal", "-1234", "jpy", 1, True, None, ("TRANSFER_PENDING", 1234, None)),
        (
            "zero",
            "0",
            "eur",
            1,
            True,
            None,
            ("TRANSFER_ABORTED", 0, "Amount must be positive, input was: 0"),
        ),
        (
            "rounds to zero",
            "0.004",
            "eur",
            1,
            True,
            None,
            ("TRANSFER_ABORTED", 0, "Amount must be positive, input was: 0"),
        ),
        (
            "no shop",
            "-9.99",
            "eur",
            None,
            True,
            None,
            ("TRANSFER_ABORTED", 999, "No shop ID provided"),
        ),
        (
            "shop 0",
            "-9.99",
            "eur",
            0,
            False,
            None,
            ("TRANSFER_ABORTED", 999, "No shop ID provided"),
        ),
        (
            "no shop beats zero",
            "0",
            "eur",
            None,
            False,
            None,
            ("TRANSFER_ABORTED", 0, "No shop ID provided"),
        ),
        (
            "unknown shop",
            "-9.99",
            "eur",
            7,
            False,
            None,
            ("TRANSFER_ON_HOLD", 999, "Cannot find Stripe account for shop ID 7"),
        ),
        (
            "unknown shop beats zero",
            "0",
            "eur",
            7,
            False,
            None,
            ("TRANSFER_ON_HOLD", 0, "Cannot find Stripe account for shop ID 7"),
        ),
        ("already created", "-9.99", "eur", None, False, "tr_1", ("TRANSFER_CREATED", 999, None)),
    ],
)
def test_evaluate_invoice_transfer(case, value, currency, shop, has_account, transfer_id, expected):
    decision = evaluate_invoice_transfer(
        D(value), currency, shop, has_account=has_account, transfer_id=transfer_id
    )
    assert (decision.status, decision.amount, decision.reason) == expected, case


@pytest.mark.parametrize(
    ("case", "amount", "shop", "has_account", "enabled", "payout_id", "status", "expected"),
    [
        ("basic", "12.34", 1, True, True, None, None, ("PAYOUT_PENDING", 1234, None)),
        (
            "zero",
            "0",
            1,
            True,
            True,
            None,
            None,
            ("PAYOUT_ABORTED", 0, "Amount must be positive, input was: 0"),
        ),
        (
            "negative (no abs)",
            "-12.34",
            1,
            True,
            True,
            None,
            None,
            ("PAYOUT_ABORTED", -1234, "Amount must be positive, input was: -1234"),
        ),
        (
            "too large beats no shop (fuzzing)",
            "1e20",
            None,
            False,
            False,
            None,
            None,
            ("PAYOUT_ON_HOLD", None, "Amount is too large, input was: 10000000000000000000000"),
        ),
        (
            "amount beats no shop",
            "-1",
            None,
            False,
            False,
            None,
            None,
            ("PAYOUT_ABORTED", -100, "Amount must be positive, input was: -100"),
        ),
        (
            "no shop",
            "12.34",
            None,
            False,
            False,
            None,
            None,
            ("PAYOUT_ABORTED", 1234, "No shop ID provided"),
        ),
        (
            "unknown shop",
            "12.34",
            2,
            False,
            False,
            None,
            None,
            ("PAYOUT_ON_HOLD", 1234, "Cannot find Stripe account for shop ID 2"),
        ),
        (
            "payouts disabled",
            "12.34",
            3,
            True,
            False,
            None,
            None,
            ("PAYOUT_ON_HOLD", 1234, "Payouts are disabled shop ID 3"),
        ),
        (
            "already paid",
            "12.34",
            1,
            True,
            True,
            "po_1",
            "PAYOUT_CREATED",
            ("PAYOUT_CREATED", 1234, None),
        ),
        (
            "failed at the bank: again",
            "12.34",
            1,
            True,
            True,
            "po_1",
            "PAYOUT_FAILED",
            ("PAYOUT_PENDING", 1234, None),
        ),
        (
            "failed, now on hold",
            "12.34",
            3,
            True,
            False,
            "po_1",
            "PAYOUT_FAILED",
            ("PAYOUT_ON_HOLD", 1234, "Payouts are disabled shop ID 3"),
        ),
        ("zero-decimal", "1234", 1, True, True, None, None, ("PAYOUT_PENDING", 1234, None)),
    ],
)
def test_evaluate_payout(case, amount, shop, has_account, enabled, payout_id, status, expected):
    currency = "jpy" if case == "zero-decimal" else "eur"
    decision = evaluate_payout(
        D(amount),
        currency,
        shop,
        has_account=has_account,
        payouts_enabled=enabled,
        payout_id=payout_id,
        status=status,
    )
    assert (decision.status, decision.amount, decision.reason) == expected, case


@pytest.mark.parametrize(
    ("payout", "reason"),
    [
        (
            {
                "failure_code": "account_closed",
                "failure_message": "The bank account has been closed.",
            },
            "account_closed: The bank account has been closed.",
        ),
        ({"failure_code": "no_account"}, "no_account: Unknown failure reason"),
        ({"failure_message": "Declined."}, "unknown_code: Declined."),
        ({"failure_code": None, "failure_message": ""}, "unknown_code: Unknown failure reason"),
    ],
)
def test_payout_failure_reason(payout, reason):
    assert payout_failure_reason(payout) == reason


def test_newest_invoice_does_not_trust_the_order():
    listed = [
        invoice(1, "2024-03-01T10:00:00Z"),
        invoice(2, "2024-05-01T10:00:00Z"),
        invoice(3, "2024-04-01T10:00:00Z"),
    ]
    assert newest_invoice(listed).id == 2
    assert newest_invoice([]) is None


@pytest.mark.parametrize(
    ("value", "checkpoint", "expected"),
    [
        ("2024-01-02T10:00:00", None, True),
        ("2024-01-02T10:00:00", "2024-01-01T10:00:00Z", True),
        ("2024-01-02T10:00:00", "2024-01-02T10:00:00Z", False),
        ("2024-01-02T10:00:00", "2024-01-02T11:00:00+01:00", False),
        ("2024-01-02T10:00:00", "2024-01-03T10:00:00Z", False),
        ("2024-01-02T10:00:00", "not a date", True),
    ],
)
def test_is_later(value, checkpoint, expected):
    assert is_later(datetime.fromisoformat(value), checkpoint) is expected


def test_mirakl_date_never_later_than_the_stored_date():
    assert mirakl_date(datetime(2024, 1, 2, 10, 0, 0, 999000)) == "2024-01-02T10:00:00Z"
