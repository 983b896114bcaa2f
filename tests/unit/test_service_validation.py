"""Capture rules for service orders (ours: ``ENABLE_SERVICE_PAYMENT_VALIDATION``)."""

from __future__ import annotations

import pytest

from tests.unit.factories import product_order, service_debit, service_order
from webapp.services.validation.rules import CaptureAction, Payment, evaluate_capture, is_debited


def payment(amount: int = 3628) -> Payment:
    return Payment("ch_1", "S-1", "to_capture", amount, "eur")


@pytest.mark.parametrize(
    ("case", "orders", "debits", "action", "amount", "reason"),
    [
        (
            "all accepted and debited",
            [service_order("S-1-A"), service_order("S-1-B")],
            {"S-1-A": service_debit("S-1-A"), "S-1-B": service_debit("S-1-B")},
            CaptureAction.CAPTURE, 3628, "To capture: 36.28 EUR of 36.28 EUR",
        ),
        (
            "one refused: released from the capture",
            [service_order("S-1-A"), service_order("S-1-B", state="ORDER_REFUSED")],
            {"S-1-A": service_debit("S-1-A")},
            CaptureAction.CAPTURE, 1814,
            "To capture: 18.14 EUR of 36.28 EUR (18.14 EUR refused or canceled on Mirakl)",
        ),
        (
            "all refused or cancelled",
            [service_order("S-1-A", state="ORDER_REFUSED"),
             service_order("S-1-B", state="ORDER_CANCELLED")],
            {},
            CaptureAction.CANCEL, 0,
            "To cancel: nothing left to capture of 36.28 EUR (36.28 EUR refused or canceled "
            "on Mirakl)",
        ),
        (
            "not accepted yet",
            [service_order("S-1-A", state="WAITING_ACCEPTANCE")],
            {},
            CaptureAction.WAIT, 0, "Order S-1-A is not ready yet, status is WAITING_ACCEPTANCE",
        ),
        (
            "accepted, debit not confirmed yet",
            [service_order("S-1-A")],
            {"S-1-A": service_debit("S-1-A", state="WAITING")},
            CaptureAction.WAIT, 0, "Order S-1-A is waiting for the customer debit (SPA01)",
        ),
        (
            "accepted, no debit at all",
            [service_order("S-1-A")],
            {},
            CaptureAction.WAIT, 0, "Order S-1-A is waiting for the customer debit (SPA01)",
        ),
    ],
)  # fmt: skip
def test_evaluate_capture_of_service_orders(case, orders, debits, action, amount, reason):
    decision = evaluate_capture(payment(), orders, (), debits)
    assert (decision.action, decision.amount, decision.reason) == (action, amount, reason)


def test_a_product_order_is_debited_by_pa01_a_service_order_by_its_debit():
    assert is_debited(product_order(order_id="O-1-A", state="SHIPPING"), {}) is True
    assert is_debited(service_order("S-1-A"), {"S-1-A": service_debit("S-1-A")}) is True
    assert is_debited(service_order("S-1-A"), {"S-1-A": service_debit("S-1-A", "REFUSED")}) is False
