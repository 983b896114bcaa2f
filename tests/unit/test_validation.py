"""Payment validation rules against the reference's cases (docs/validation.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.factories import cancelation, line, pending_debit, product_order
from webapp.services.stripe.charges import (
    CANCELED,
    CAPTURABLE,
    CAPTURED,
    FAILED,
    NOT_READY,
    evaluate_charge_status,
    payment_state,
)
from webapp.services.validation.rules import (
    CaptureAction,
    CaptureDecision,
    Payment,
    choose_payment,
    evaluate_capture,
    evaluate_debits,
)

D = Decimal
CHARGE = "ch_basic"


def payment(status: str = "to_capture", amount: int | None = 16944, currency: str | None = "eur"):
    return Payment(CHARGE, "O-1", status, amount, currency)


def order(order_id: str, state: str = "CLOSED", **kw):
    return product_order(order_id=order_id, state=state, **kw)


def cancelled(order_id: str):
    """An order whose two lines were cancelled (amounts moved to ``cancelations``)."""
    first = (cancelation("12.34", "5.80"),)
    second = (cancelation("56.78", "9.80"),)
    return product_order(
        order_id=order_id,
        state="CANCELED",
        total="0",
        lines=(
            line(f"{order_id}-1", "CANCELED", "0", cancelations=first),
            line(f"{order_id}-2", "CANCELED", "0", cancelations=second),
        ),
    )


# ---------------------------------------------------------------- capture or cancel


@pytest.mark.parametrize(
    ("case", "amount", "orders", "action", "expected", "reason"),
    [
        ("fully accepted", 16944, [order("O-1-A"), order("O-1-B")], "capture", 16944,
         "To capture: 169.44 EUR of 169.44 EUR"),
        ("partially refused", 16944, [order("O-1-A"), order("O-1-B", "REFUSED")], "capture",
         8472, "To capture: 84.72 EUR of 169.44 EUR (84.72 EUR refused or canceled on Mirakl)"),
        ("all refused", 16944, [order("O-1-A", "REFUSED"), order("O-1-B", "REFUSED")], "cancel",
         0, "To cancel: nothing left to capture of 169.44 EUR (169.44 EUR refused or canceled "
         "on Mirakl)"),
        ("all cancelled", 16944, [cancelled("O-1-A"), cancelled("O-1-B")], "cancel", 0,
         "To cancel: nothing left to capture of 169.44 EUR (169.44 EUR refused or canceled "
         "on Mirakl)"),
        ("capture including operator amount", 20000, [order("O-1-A"), order("O-1-B")],
         "capture", 20000, "To capture: 200.00 EUR of 200.00 EUR"),
        ("operator amount only", 20000,
         [order("O-1-A", "REFUSED"), order("O-1-B", "REFUSED")], "capture", 3056,
         "To capture: 30.56 EUR of 200.00 EUR (169.44 EUR refused or canceled on Mirakl)"),
        ("non-existent commercial order", 16944, [], "wait", 0,
         "Commercial order O-1 not found in Mirakl"),
        ("one order not accepted yet", 16944,
         [order("O-1-A"), order("O-1-B", "WAITING_ACCEPTANCE", debited=False)], "wait", 0,
         "Order O-1-B is not ready yet, status is WAITING_ACCEPTANCE"),
        ("accepted but not debited", 16944, [order("O-1-A", "SHIPPING", debited=False)], "wait", 0,
         "Order O-1-A is waiting for the customer debit (PA01)"),
        ("refused and never debited", 8472,
         [order("O-1-A", "REFUSED", debited=False), order("O-1-B")], "cancel", 0,
         "To cancel: nothing left to capture of 84.72 EUR (84.72 EUR refused or canceled "
         "on Mirakl)"),
        ("order in another currency", 16944, [order("O-1-A", currency="usd")], "wait", 0,
         "Order O-1-A is in USD but payment ch_basic is in EUR"),
        ("more refused than authorised", 5000, [order("O-1-A", "REFUSED")], "cancel", 0,
         "To cancel: nothing left to capture of 50.00 EUR (84.72 EUR refused or canceled "
         "on Mirakl)"),
    ],
)  # fmt: skip
def test_evaluate_capture(case, amount, orders, action, expected, reason):
    decision = evaluate_capture(payment(amount=amount), orders)
    assert decision.action == CaptureAction(action), case
    assert decision.amount == expected
    assert decision.reason == reason


def test_evaluate_capture_zero_decimal_currency():
    jpy = product_order(order_id="O-1-A", state="REFUSED", currency="jpy", total="1000",
                        lines=(line("O-1-A-1", "REFUSED", "1000", (), ()),))  # fmt: skip
    decision = evaluate_capture(payment(amount=3000, currency="jpy"), [jpy])
    assert (decision.action, decision.amount) == (CaptureAction.CAPTURE, 2000)


def test_evaluate_capture_unreadable_order_waits():
    decision = evaluate_capture(payment(), [order("O-1-A")], ["Order O-1-B could not be read"])
    assert decision == CaptureDecision(CaptureAction.WAIT, 0, "Order O-1-B could not be read")


def test_evaluate_capture_mapping_without_currency_uses_the_orders():
    decision = evaluate_capture(payment(currency=None), [order("O-1-A"), order("O-1-B")])
    assert (decision.action, decision.amount) == (CaptureAction.CAPTURE, 16944)


# ---------------------------------------------------------------- PA01


def pa01(order_id: str, status: str, amount: str = "84.72") -> dict:
    return {
        "amount": D(amount),
        "customer_id": "customer_basic",
        "order_id": order_id,
        "payment_status": status,
        "transaction_number": CHARGE,
    }


@pytest.mark.parametrize(
    ("case", "status", "debits", "entries", "payment_status", "reason"),
    [
        ("authorised", "to_capture", [pending_debit("O-1-A"), pending_debit("O-1-B")],
         [pa01("O-1-A", "OK"), pa01("O-1-B", "OK")], "OK", None),
        ("captured up front", "captured", [pending_debit()], [pa01("O-1-A", "OK")], "OK", None),
        ("payment failed", "failed", [pending_debit("O-1-A"), pending_debit("O-1-B", "12.30")],
         [pa01("O-1-A", "REFUSED"), pa01("O-1-B", "REFUSED", "12.30")], "REFUSED", None),
        ("payment canceled", "canceled", [pending_debit()], [pa01("O-1-A", "REFUSED")],
         "REFUSED", None),
        ("currency mismatch", "to_capture", [pending_debit(currency="usd")], [], None,
         "Mirakl debit of order O-1-A not validated: the order is in USD but payment "
         "ch_basic is in EUR"),
        ("one of two mismatched", "to_capture",
         [pending_debit("O-1-A"), pending_debit("O-1-B", currency="gbp")], [pa01("O-1-A", "OK")],
         "OK",
         "Mirakl debit of order O-1-B not validated: the order is in GBP but payment "
         "ch_basic is in EUR"),
    ],
)  # fmt: skip
def test_evaluate_debits(case, status, debits, entries, payment_status, reason):
    decision = evaluate_debits(debits, payment(status))
    assert list(decision.entries) == entries, case
    assert decision.payment_status == payment_status
    assert decision.reason == reason


@pytest.mark.parametrize(
    ("statuses", "chosen"),
    [
        ([], None),
        (["to_capture"], 0),
        (["failed", "to_capture"], 1),
        (["to_capture", "failed"], 0),  # a later failed retry does not refuse a paid order
        (["failed", "canceled"], 1),
        (["captured", "to_capture"], 1),
    ],
)
def test_choose_payment(statuses, chosen):
    candidates = [Payment(f"ch_{i}", "O-1", s, 100, "eur") for i, s in enumerate(statuses)]
    result = choose_payment(candidates)
    assert result == (None if chosen is None else candidates[chosen])


# ---------------------------------------------------------------- Stripe payment states


@pytest.mark.parametrize(
    ("charge", "status"),
    [
        ({"status": "failed", "captured": False}, "failed"),
        ({"status": "succeeded", "captured": True}, "captured"),
        ({"status": "succeeded", "captured": True, "refunded": True}, "captured"),
        ({"status": "succeeded", "captured": False, "refunded": True}, "canceled"),
        ({"status": "succeeded", "captured": False}, "to_capture"),
        ({"status": "pending", "captured": False}, "to_capture"),
    ],
)
def test_evaluate_charge_status(charge, status):
    assert evaluate_charge_status(charge).value == status


@pytest.mark.parametrize(
    ("charge", "intent", "state"),
    [
        ({"status": "failed"}, {"status": "requires_payment_method"}, FAILED),
        ({"status": "succeeded", "captured": False}, {"status": "requires_capture"}, CAPTURABLE),
        ({"status": "succeeded", "captured": True}, {"status": "succeeded"}, CAPTURED),
        ({"status": "succeeded", "refunded": True}, {"status": "canceled"}, CANCELED),
        (None, {"status": "processing"}, NOT_READY),
        (None, {"status": "requires_capture"}, CAPTURABLE),
        ({"status": "succeeded", "captured": False}, None, CAPTURABLE),
        ({"status": "succeeded", "captured": True}, None, CAPTURED),
        ({"status": "succeeded", "captured": False, "refunded": True}, None, CANCELED),
        ({"status": "pending", "captured": False}, None, NOT_READY),
    ],
)
def test_payment_state(charge, intent, state):
    assert payment_state(charge, intent)[0] == state
