"""Pure refund rules (docs/refunds.md): refund matrix, reversal amounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.unit.factories import (
    line,
    line_refund,
    product_order,
    refund_facts,
    service_order,
    service_refund,
    stripe_charge,
)
from webapp.models import RefundType, StripeRefund
from webapp.services.ledger.minor_units import to_minor
from webapp.services.mirakl import orders
from webapp.services.refunds.rules import (
    Decision,
    PaymentFacts,
    RefundFacts,
    ReversalAmount,
    ReversalSource,
    evaluate_refund,
    evaluate_reversal_amount,
    evaluate_reversal_source,
    is_no_longer_waiting,
    validation_entry,
)

PRODUCT, SERVICE = RefundType.PRODUCT_ORDER.value, RefundType.SERVICE_ORDER.value


def intent(status: str) -> dict[str, Any]:
    return {"id": "pi_1", "status": status}


def on_charge(**overrides: Any) -> PaymentFacts:
    return PaymentFacts("ch_1", charge=stripe_charge(**overrides))


REFUND_CASES = [
    # (case, refund, payment, expected decision)
    (
        "product refund without an order line",
        refund_facts(order_line_id=None),
        on_charge(),
        Decision("REFUND_ON_HOLD", "Refund 1100 has no order line in PA12"),
    ),
    (
        "service refund needs no order line",
        refund_facts(type=SERVICE, order_line_id=None),
        on_charge(),
        Decision("REFUND_PENDING", None, charge_id="ch_1"),
    ),
    (
        "zero amount",
        refund_facts(amount=0),
        on_charge(),
        Decision("REFUND_ABORTED", "Amount must be positive, input was: 0"),
    ),
    (
        "unreadable amount",
        refund_facts(amount=None),
        on_charge(),
        Decision("REFUND_ABORTED", "Amount must be positive, input was: 0"),
    ),
    (
        "Stripe refund already recorded: re-validate, whatever the charge says",
        refund_facts(stripe_refund_id="re_1"),
        PaymentFacts("ch_1"),
        Decision("REFUND_PENDING", None, charge_id="ch_1"),
    ),
    (
        "no payment found",
        refund_facts(),
        None,
        Decision("REFUND_ON_HOLD", "Cannot find the ID of the payment to be refunded"),
    ),
    (
        "Stripe does not know the charge",
        refund_facts(),
        PaymentFacts("ch_1", error="No such charge: 'ch_1'", is_missing=True),
        Decision("REFUND_ABORTED", "No such charge: 'ch_1'"),
    ),
    (
        "Stripe unreachable",
        refund_facts(),
        PaymentFacts("ch_1", error="timeout"),
        Decision("REFUND_ON_HOLD", "Cannot check payment ch_1: timeout"),
    ),
    (
        "fully refunded by this very refund: re-validate, not abort",
        refund_facts(),
        PaymentFacts(
            "ch_1", charge=stripe_charge(refunded=True, amount_refunded=8472), own_refund_id="re_9"
        ),
        Decision("REFUND_PENDING", None, charge_id="ch_1"),
    ),
    (
        "PaymentIntent canceled",
        refund_facts(),
        PaymentFacts("pi_1", intent=intent("canceled")),
        Decision("REFUND_ABORTED", "Payment pi_1 has been canceled"),
    ),
    *[
        (
            f"PaymentIntent {status}: cancel it, wait",
            refund_facts(),
            PaymentFacts("pi_1", intent=intent(status)),
            Decision(
                "REFUND_ON_HOLD",
                f"Payment pi_1 is not ready yet, status is {status}",
                cancel_payment_intent="pi_1",
            ),
        )
        for status in (
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
            "requires_capture",
        )
    ],
    (
        "PaymentIntent processing",
        refund_facts(),
        PaymentFacts("pi_1", intent=intent("processing")),
        Decision("REFUND_ON_HOLD", "Payment pi_1 is not ready yet, status is processing"),
    ),
    (
        "PaymentIntent in an unknown state",
        refund_facts(),
        PaymentFacts("pi_1", intent=intent("requires_reauthorization")),
        Decision("REFUND_ON_HOLD", "Payment pi_1 has an unknown status: requires_reauthorization"),
    ),
    (
        "PaymentIntent succeeded: its latest charge is refunded",
        refund_facts(),
        PaymentFacts("pi_1", intent=intent("succeeded"), charge=stripe_charge(id="ch_7")),
        Decision("REFUND_PENDING", None, charge_id="ch_7"),
    ),
    (
        "charge whose PaymentIntent is uncaptured: cancel it",
        refund_facts(),
        PaymentFacts(
            "ch_1", intent=intent("requires_capture"), charge=stripe_charge(captured=False)
        ),
        Decision(
            "REFUND_ON_HOLD",
            "Payment ch_1 is not ready yet, status is requires_capture",
            cancel_payment_intent="pi_1",
        ),
    ),
    (
        "charge failed",
        refund_facts(),
        on_charge(status="failed"),
        Decision("REFUND_ABORTED", "Payment ch_1 failed"),
    ),
    (
        "charge pending",
        refund_facts(),
        on_charge(status="pending"),
        Decision("REFUND_ON_HOLD", "Payment ch_1 is not ready yet, status is pending"),
    ),
    (
        "charge in an unknown state",
        refund_facts(),
        on_charge(status="disputed"),
        Decision("REFUND_ON_HOLD", "Payment ch_1 has an unknown status: disputed"),
    ),
    (
        "charge not captured",
        refund_facts(),
        on_charge(captured=False),
        Decision("REFUND_ON_HOLD", "Payment ch_1 is not ready yet, status is uncaptured"),
    ),
    (
        "charge fully refunded by someone else",
        refund_facts(),
        on_charge(refunded=True, amount_refunded=8472),
        Decision("REFUND_ABORTED", "Payment ch_1 has been canceled"),  # reference wording
    ),
    (
        "currency differs",
        refund_facts(currency="usd"),
        on_charge(),
        Decision("REFUND_ABORTED", "Refund currency USD differs from payment ch_1 currency EUR"),
    ),
    (
        "amount above the charge",
        refund_facts(amount=9000),
        on_charge(),
        Decision(
            "REFUND_ABORTED",
            "Refund amount 9000 is more than what is left to refund on payment ch_1: 8472",
        ),
    ),
    (
        "amount above what is left after earlier refunds",
        refund_facts(amount=1234),
        on_charge(amount_refunded=8000),
        Decision(
            "REFUND_ABORTED",
            "Refund amount 1234 is more than what is left to refund on payment ch_1: 472",
        ),
    ),
    (
        "partially refunded charge with enough left",
        refund_facts(amount=1234),
        on_charge(amount_refunded=1000),
        Decision("REFUND_PENDING", None, charge_id="ch_1"),
    ),
    (
        "py_ payment",
        refund_facts(),
        PaymentFacts("py_1", charge=stripe_charge(id="py_1")),
        Decision("REFUND_PENDING", None, charge_id="py_1"),
    ),
]


@pytest.mark.parametrize(
    ("refund_facts", "payment", "expected"),
    [case[1:] for case in REFUND_CASES],
    ids=[case[0] for case in REFUND_CASES],
)
def test_evaluate_refund(
    refund_facts: RefundFacts, payment: PaymentFacts | None, expected: Decision
) -> None:
    assert evaluate_refund(refund_facts, payment) == expected


def source(**overrides: Any) -> ReversalSource:
    values: dict[str, Any] = {
        "mirakl_id": "1100",
        "transfer_id": None,
        "refund_status": "REFUND_CREATED",
        "order_id": "O-1-A",
        "order_transfer_status": "TRANSFER_CREATED",
        "order_transfer_id": "tr_1",
        "order_transfer_reason": None,
    }
    values.update(overrides)
    return ReversalSource(**values)


SOURCE_CASES = [
    ("already reversed in Stripe", source(transfer_id="trr_1"), Decision("TRANSFER_CREATED")),
    (
        "no refund row",
        source(refund_status=None),
        Decision("TRANSFER_ON_HOLD", "Cannot find StripeRefund with ID 1100"),
    ),
    (
        "no refund row, tax reversal names the refund",
        source(mirakl_id="1100_TAX", refund_status=None),
        Decision("TRANSFER_ON_HOLD", "Cannot find StripeRefund with ID 1100"),
    ),
    (
        "refund aborted",
        source(refund_status="REFUND_ABORTED"),
        Decision("TRANSFER_ABORTED", "Refund 1100 has been aborted"),
    ),
    *[
        (
            f"refund {status}",
            source(refund_status=status),
            Decision("TRANSFER_ON_HOLD", "Refund 1100 has yet to be validated"),
        )
        for status in ("REFUND_PENDING", "REFUND_ON_HOLD", "REFUND_FAILED")
    ],
    (
        "order split aborted",
        source(
            order_transfer_status="TRANSFER_ABORTED",
            order_transfer_id=None,
            order_transfer_reason="Order cannot be processed, status is REFUSED",
        ),
        Decision(
            "TRANSFER_ABORTED",
            "Payment split of order O-1-A was aborted (Order cannot be processed, status is "
            "REFUSED): no transfer to reverse",
        ),
    ),
    (
        "order split ignored",
        source(
            order_transfer_status="TRANSFER_IGNORED",
            order_transfer_id=None,
            order_transfer_reason="Shop 1 is ignored",
        ),
        Decision(
            "TRANSFER_ABORTED",
            "Payment split of order O-1-A was ignored (Shop 1 is ignored): no transfer to reverse",
        ),
    ),
    *[
        (
            f"order split {status or 'not there'}",
            source(order_transfer_status=status, order_transfer_id=None),
            Decision(
                "TRANSFER_ON_HOLD",
                "Payment split has to occur before the transfer can be reversed for a refund",
            ),
        )
        for status in (None, "TRANSFER_PENDING", "TRANSFER_ON_HOLD", "TRANSFER_FAILED")
    ],
    ("ready: compute the amount", source(), None),
]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [case[1:] for case in SOURCE_CASES],
    ids=[case[0] for case in SOURCE_CASES],
)
def test_evaluate_reversal_source(facts: ReversalSource, expected: Decision | None) -> None:
    assert evaluate_reversal_source(facts) == expected


def amounts(**overrides: Any) -> ReversalAmount:
    values: dict[str, Any] = {
        "mirakl_id": "1100",
        "order_transfer_id": "tr_1",
        "refund_amount": 1234,
        "refunded_commission": 123,
        "refunded_tax": 0,
        "is_tax_split": False,
        "transfer_left": 8073,
        "pending_elsewhere": 0,
    }
    values.update(overrides)
    return ReversalAmount(**values)


AMOUNT_CASES = [
    ("worked example: 12.34 − 1.23", amounts(), Decision("TRANSFER_PENDING", None, 1111)),
    (
        "order unreadable",
        amounts(order_error="Cannot find order O-1-A in Mirakl"),
        Decision("TRANSFER_ON_HOLD", "Cannot find order O-1-A in Mirakl"),
    ),
    (
        "taxes stay with the seller reversal without tax split",
        amounts(refunded_tax=334),
        Decision("TRANSFER_PENDING", None, 1111),
    ),
    (
        "tax split: seller reversal minus refunded tax",
        amounts(refunded_tax=334, is_tax_split=True),
        Decision("TRANSFER_PENDING", None, 777),
    ),
    (
        "tax split: the _TAX reversal is the refunded tax",
        amounts(mirakl_id="1100_TAX", refunded_tax=334, is_tax_split=True),
        Decision("TRANSFER_PENDING", None, 334),
    ),
    (
        "_TAX reversal with no refunded tax",
        amounts(mirakl_id="1100_TAX", is_tax_split=True),
        Decision("TRANSFER_ABORTED", "Amount must be positive, input was: 0 (refunded tax 0)", 0),
    ),
    (
        "commission covers the refund: nothing to pull back",
        amounts(refund_amount=100, refunded_commission=123),
        Decision(
            "TRANSFER_ABORTED",
            "Amount must be positive, input was: -23 (refund 100 − refunded commission 123)",
            -23,
        ),
    ),
    (
        "transfer unreadable",
        amounts(transfer_error="No such transfer: 'tr_1'"),
        Decision("TRANSFER_ON_HOLD", "Cannot check transfer tr_1: No such transfer: 'tr_1'", 1111),
    ),
    (
        "transfer fully reversed already",
        amounts(transfer_left=0),
        Decision("TRANSFER_ABORTED", "Transfer tr_1 has already been fully reversed", 1111),
    ),
    (
        "more than left on the transfer",
        amounts(transfer_left=1000),
        Decision(
            "TRANSFER_ON_HOLD",
            "Reversal of 1111 is more than what is left on transfer tr_1: 1000",
            1111,
        ),
    ),
    (
        "other reversals waiting to go count",
        amounts(transfer_left=2000, pending_elsewhere=1500),
        Decision(
            "TRANSFER_ON_HOLD",
            "Reversal of 1111 is more than what is left on transfer tr_1: 500",
            1111,
        ),
    ),
    ("exactly what is left", amounts(transfer_left=1111), Decision("TRANSFER_PENDING", None, 1111)),
]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [case[1:] for case in AMOUNT_CASES],
    ids=[case[0] for case in AMOUNT_CASES],
)
def test_evaluate_reversal_amount(facts: ReversalAmount, expected: Decision) -> None:
    assert evaluate_reversal_amount(facts) == expected


def test_worked_example_from_a_mirakl_order() -> None:
    """Refund 12.34 with commission 1.23 on the order's line → a reversal of 1111."""
    order = product_order(
        lines=(
            line(
                "O-1-1",
                refunds=(line_refund("1100", "12.34", "1.23"),),
            ),
            line("O-1-2", total="56.78"),
        )
    )
    commission = to_minor(orders.refunded_commission(order, "1100", "O-1-1"), "eur")
    facts = amounts(refund_amount=to_minor(Decimal("12.34"), "eur"), refunded_commission=commission)
    assert evaluate_reversal_amount(facts) == Decision("TRANSFER_PENDING", None, 1111)


def test_worked_example_from_a_service_order() -> None:
    order = service_order(refunds=(service_refund("2200", "12.34", "1.23", "0.34"),))
    facts = amounts(
        mirakl_id="2200",
        refunded_commission=to_minor(orders.refunded_commission(order, "2200"), "eur"),
        refunded_tax=to_minor(orders.refunded_tax(order, "2200"), "eur"),
        is_tax_split=True,
    )
    assert evaluate_reversal_amount(facts) == Decision("TRANSFER_PENDING", None, 1077)


VALIDATION_CASES = [
    (
        "PA02 product entry",
        StripeRefund(
            type=PRODUCT,
            mirakl_refund_id="1100",
            mirakl_order_id="O-1-A",
            amount=1234,
            currency="eur",
            stripe_refund_id="re_1",
        ),
        {
            "refund_id": "1100",
            "amount": Decimal("12.34"),
            "currency_iso_code": "EUR",
            "payment_status": "OK",
            "transaction_number": "re_1",
        },
    ),
    (
        "SPA02 service entry",
        StripeRefund(
            type=SERVICE,
            mirakl_refund_id="2200",
            mirakl_order_id="S-1-A",
            amount=1234,
            currency="eur",
            stripe_refund_id="re_2",
        ),
        {
            "id": "2200",
            "order_id": "S-1-A",
            "amount": Decimal("12.34"),
            "currency_code": "EUR",
            "state": "OK",
            "transaction_number": "re_2",
        },
    ),
    (
        "zero-decimal currency",
        StripeRefund(
            type=PRODUCT,
            mirakl_refund_id="1101",
            amount=1234,
            currency="jpy",
            stripe_refund_id="re_3",
        ),
        {
            "refund_id": "1101",
            "amount": Decimal("1234"),
            "currency_iso_code": "JPY",
            "payment_status": "OK",
            "transaction_number": "re_3",
        },
    ),
]


@pytest.mark.parametrize(
    ("row", "expected"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_validation_entry(row: StripeRefund, expected: dict[str, Any]) -> None:
    assert validation_entry(row) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("PA02 PUT /api/payment/refund: HTTP 400 Refund 1100 is not waiting for payment", True),
        ("HTTP 400 The refund is not in state WAITING_REFUND_PAYMENT", True),
        ("HTTP 400 Refund 1100 is not waiting for payment: not found", False),
        ("HTTP 400 Invalid payment_status 'KO' for refund 1100", False),
    ],
)
def test_is_no_longer_waiting(message: str, expected: bool) -> None:
    assert is_no_longer_waiting(message) is expected
