"""Payment validation rules at their edges (docs/validation.md).

The worked captures and PA01 entries live in test_validation.py; this table pins what
mutation testing found loose (docs/testing.md): how a mapping row becomes a
``Payment``, debits held back next to debits sent, the one-cent capture, and reasons
word for word.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.factories import product_order
from webapp.models import PaymentMapping
from webapp.services.mirakl.types import PendingDebit
from webapp.services.validation.rules import (
    CaptureAction,
    CaptureDecision,
    DebitDecision,
    Payment,
    evaluate_capture,
    evaluate_debits,
)

EUR_PAYMENT = Payment("ch_basic", "O-1", "to_capture", 16944, "eur")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            PaymentMapping(
                stripe_charge_id="ch_1",
                mirakl_commercial_order_id="O-1",
                status="to_capture",
                stripe_amount=16944,
                currency="EUR",
            ),
            Payment("ch_1", "O-1", "to_capture", 16944, "eur"),
            id="full row, currency lowered",
        ),
        pytest.param(
            PaymentMapping(
                stripe_charge_id="ch_2",
                mirakl_commercial_order_id=None,
                status="captured",
                stripe_amount=None,
                currency=None,
            ),
            Payment("ch_2", "", "captured", None, None),
            id="row stored by the reference: no order id, amount or currency",
        ),
        pytest.param(
            PaymentMapping(stripe_charge_id="ch_3", status="failed", stripe_amount=5, currency=""),
            Payment("ch_3", "", "failed", 5, None),
            id="empty currency reads as none",
        ),
    ],
)
def test_payment_of_a_mapping_row(row, expected):
    assert Payment.of(row) == expected


def debit(order_id: str, currency: str) -> PendingDebit:
    return PendingDebit(order_id, "O-1", "customer_basic", 1, Decimal("84.72"), currency)


def held_reason(order_id: str) -> str:
    return (
        f"Mirakl debit of order {order_id} not validated: the order is in USD but payment "
        "ch_basic is in EUR"
    )


OK_ENTRY_B = {
    "amount": Decimal("84.72"),
    "customer_id": "customer_basic",
    "order_id": "O-1-B",
    "payment_status": "OK",
    "transaction_number": "ch_basic",
}


@pytest.mark.parametrize(
    ("debits", "expected"),
    [
        pytest.param(
            [debit("O-1-A", "USD"), debit("O-1-B", "EUR")],
            DebitDecision((OK_ENTRY_B,), "OK", held_reason("O-1-A")),
            id="a held debit does not stop the next one",
        ),
        pytest.param(
            [debit("O-1-A", "usd"), debit("O-1-B", "usd")],
            DebitDecision((), None, f"{held_reason('O-1-A')}; {held_reason('O-1-B')}"),
            id="every held debit is named",
        ),
    ],
)
def test_debits_held_for_their_currency(debits, expected):
    assert evaluate_debits(debits, EUR_PAYMENT) == expected


def wait(reason: str) -> CaptureDecision:
    return CaptureDecision(CaptureAction.WAIT, 0, reason)


@pytest.mark.parametrize(
    ("payment", "unreadable", "expected"),
    [
        pytest.param(
            EUR_PAYMENT,
            ["Order O-1-A could not be read", "Order O-1-B could not be read"],
            wait("Order O-1-A could not be read; Order O-1-B could not be read"),
            id="every unreadable order is named",
        ),
        pytest.param(
            Payment("ch_basic", "O-1", "to_capture", None, "eur"),
            [],
            wait("Amount of payment ch_basic is unknown"),
            id="amount unknown",
        ),
        pytest.param(
            Payment("ch_basic", "O-1", "to_capture", 16944, None),
            [],
            CaptureDecision(CaptureAction.CAPTURE, 16944, "To capture: 169.44 EUR of 169.44 EUR"),
            id="no currency on the mapping, one order: the order's",
        ),
        pytest.param(
            Payment("ch_basic", "O-1", "to_capture", 1, "eur"),
            [],
            CaptureDecision(CaptureAction.CAPTURE, 1, "To capture: 0.01 EUR of 0.01 EUR"),
            id="one cent is captured, not canceled",
        ),
    ],
)
def test_capture_edges(payment, unreadable, expected):
    orders = [product_order(order_id="O-1-A", state="CLOSED")]
    assert evaluate_capture(payment, orders, unreadable) == expected
