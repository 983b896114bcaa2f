"""Refund and reversal rules at their edges (docs/refunds.md).

The refund matrix and the worked reversals live in test_refunds.py; this table pins what
mutation testing found loose (docs/testing.md): the bounds 1 and "exactly what is
left", which charge id a PENDING refund names, and reasons word for word.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.factories import refund_facts, stripe_charge
from webapp.models import RefundStatus as R
from webapp.models import TransferStatus as T
from webapp.services.refunds.rules import (
    SPLIT_FIRST,
    Decision,
    PaymentFacts,
    ReversalAmount,
    ReversalSource,
    evaluate_refund,
    evaluate_reversal_amount,
    evaluate_reversal_source,
)


def on_charge(**overrides: Any) -> PaymentFacts:
    return PaymentFacts("ch_1", charge=stripe_charge(**overrides))


def on_intent(status: str, **charge_overrides: Any) -> PaymentFacts:
    paid = stripe_charge(id="ch_9", **charge_overrides) if status == "succeeded" else None
    return PaymentFacts("pi_1", charge=paid, intent={"id": "pi_1", "status": status})


# (case, refund, payment, expected decision)
REFUND_CASES = [
    (
        "one cent is positive",
        refund_facts(amount=1),
        on_charge(),
        Decision(R.PENDING, None, charge_id="ch_1"),
    ),
    (
        "Stripe refund recorded, no payment found",
        refund_facts(stripe_refund_id="re_1"),
        None,
        Decision(R.PENDING, None, charge_id=None),
    ),
    (
        "our Stripe refund exists: the PaymentIntent's charge is named, not the intent",
        refund_facts(),
        PaymentFacts(
            "pi_1", charge=stripe_charge(id="ch_9"), intent={"id": "pi_1"}, own_refund_id="re_1"
        ),
        Decision(R.PENDING, None, charge_id="ch_9"),
    ),
    (
        "our Stripe refund exists, no charge known: the payment id is named",
        refund_facts(),
        PaymentFacts("pi_1", intent={"id": "pi_1"}, own_refund_id="re_1"),
        Decision(R.PENDING, None, charge_id="pi_1"),
    ),
    (
        "PaymentIntent processing with a charge already: still not ready",
        refund_facts(),
        PaymentFacts("pi_1", charge=stripe_charge(), intent={"id": "pi_1", "status": "processing"}),
        Decision(R.ON_HOLD, "Payment pi_1 is not ready yet, status is processing"),
    ),
    (
        "PaymentIntent succeeded without its charge",
        refund_facts(),
        PaymentFacts("pi_1", intent={"id": "pi_1", "status": "succeeded"}),
        Decision(R.ON_HOLD, "Payment pi_1 is not ready yet, status is succeeded"),
    ),
    (
        "succeeded PaymentIntent: its charge is refunded",
        refund_facts(),
        on_intent("succeeded"),
        Decision(R.PENDING, None, charge_id="ch_9"),
    ),
    (
        "charge without a currency: no currency check",
        refund_facts(),
        on_charge(currency=None),
        Decision(R.PENDING, None, charge_id="ch_1"),
    ),
    (
        "refund of exactly what is left",
        refund_facts(amount=8472 - 1000),
        on_charge(amount_refunded=1000),
        Decision(R.PENDING, None, charge_id="ch_1"),
    ),
    (
        "one cent more than what is left",
        refund_facts(amount=8472 - 999),
        on_charge(amount_refunded=1000),
        Decision(
            R.ABORTED,
            "Refund amount 7473 is more than what is left to refund on payment ch_1: 7472",
        ),
    ),
    (
        "charge without an amount: nothing is left",
        refund_facts(amount=1),
        on_charge(amount=None),
        Decision(
            R.ABORTED, "Refund amount 1 is more than what is left to refund on payment ch_1: 0"
        ),
    ),
]


@pytest.mark.parametrize(
    ("facts", "payment", "expected"),
    [pytest.param(f, p, e, id=case) for case, f, p, e in REFUND_CASES],
)
def test_refund_edges(facts, payment, expected):
    assert evaluate_refund(facts, payment) == expected


def source(**overrides: Any) -> ReversalSource:
    values: dict[str, Any] = {
        "mirakl_id": "1100",
        "transfer_id": None,
        "refund_status": R.CREATED,
        "order_id": "O-1-A",
        "order_transfer_status": T.CREATED,
        "order_transfer_id": "tr_1",
    }
    return ReversalSource(**{**values, **overrides})


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            source(order_transfer_status=T.ABORTED),
            Decision(
                T.ABORTED,
                "Payment split of order O-1-A was aborted (no reason given): "
                "no transfer to reverse",
            ),
            id="split aborted, no reason stored",
        ),
        pytest.param(
            source(order_transfer_id=None),
            Decision(T.ON_HOLD, SPLIT_FIRST),
            id="split CREATED but its transfer id unknown",
        ),
        pytest.param(source(), None, id="ready: the amount decides"),
    ],
)
def test_reversal_source_edges(facts, expected):
    assert evaluate_reversal_source(facts) == expected


def amount(**overrides: Any) -> ReversalAmount:
    values: dict[str, Any] = {
        "mirakl_id": "1100",
        "order_transfer_id": "tr_1",
        "refund_amount": 1234,
        "refunded_commission": 100,
        "transfer_left": 8073,
    }
    return ReversalAmount(**{**values, **overrides})


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            amount(refund_amount=300, refunded_commission=100, refunded_tax=200, is_tax_split=True),
            Decision(
                T.ABORTED,
                "Amount must be positive, input was: 0 "
                "(refund 300 − refunded commission 100 − refunded tax 200)",
                0,
            ),
            id="nothing left under tax split: the whole sum is shown",
        ),
        pytest.param(
            amount(refund_amount=101),
            Decision(T.PENDING, None, 1),
            id="one cent is positive",
        ),
        pytest.param(
            amount(refund_amount=101, transfer_left=1),
            Decision(T.PENDING, None, 1),
            id="one cent left on the transfer is enough for one cent",
        ),
        pytest.param(
            amount(refund_amount=1134, transfer_left=1000),
            Decision(
                T.ON_HOLD, "Reversal of 1034 is more than what is left on transfer tr_1: 1000", 1034
            ),
            id="more than what is left",
        ),
        pytest.param(
            amount(transfer_left=100, pending_elsewhere=150),
            Decision(
                T.ON_HOLD, "Reversal of 1134 is more than what is left on transfer tr_1: 0", 1134
            ),
            id="others waiting take more than is left: shown as 0",
        ),
    ],
)
def test_reversal_amount_edges(facts, expected):
    assert evaluate_reversal_amount(facts) == expected
