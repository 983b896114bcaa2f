"""The payment split's pure rules at their edges: every outcome as a whole ``Decision``.

The worked amounts and the precedence live in test_transfers.py; this table pins what
mutation testing found loose (docs/testing.md): the currency each decision carries,
the payment checks of step 7 word for word, and the amount bounds 1 and ``MAX_AMOUNT``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.unit.factories import line, product_order, service_order
from webapp.models import TransferStatus as T
from webapp.services.ledger.minor_units import MAX_AMOUNT
from webapp.services.mirakl.types import ProductOrder
from webapp.services.split.rules import (
    TAX_SPLIT_DISABLED,
    AccountFacts,
    ChargeFacts,
    Decision,
    PaymentFacts,
    charge_facts,
    evaluate_order_transfer,
    payment_facts,
    payment_reference,
)

SHOP = AccountFacts(id=10, mirakl_shop_id=1, stripe_account_id="acct_seller")
IGNORED_SHOP = AccountFacts(id=11, mirakl_shop_id=1, stripe_account_id="acct_x", ignored=True)
PAID_BY_CHARGE = product_order(transaction_number="ch_1")
PAID_BY_INTENT = product_order(transaction_number="pi_1")


def charge(status="succeeded", *, captured=True, refunded=False, currency="eur", id="ch_1"):
    return ChargeFacts(id, status, captured, refunded, currency)


def held(reason: str, **fields) -> Decision:
    return Decision(T.ON_HOLD, reason, currency="eur", **fields)


def aborted(reason: str) -> Decision:
    return Decision(T.ABORTED, reason, currency="eur")


def single_line_order(total: str) -> ProductOrder:
    """A product order whose whole amount due is ``total``, no commission, no taxes.

    Built at 1 and then given ``total``: the Mirakl parser refuses amounts beyond 1e12, and
    the bound tested here (``MAX_AMOUNT``) lies far above what Mirakl can send.
    """
    lines = (line("O-1-1", total="1", taxes=(), shipping_taxes=()),)
    order = product_order(total="1", commission="0", lines=lines)
    amount = Decimal(total)
    return replace(
        order,
        total_price=amount,
        lines=tuple(replace(item, total_price=amount) for item in order.lines),
    )


# (case, order, facts, expected decision)
CASES = [
    (
        "transfer already made: CREATED, the order's currency kept",
        product_order(),
        {"transfer_id": "tr_1"},
        Decision(T.CREATED, None, currency="eur"),
    ),
    (
        "_TAX twin without tax split",
        product_order(),
        {"is_tax": True},
        held(TAX_SPLIT_DISABLED),
    ),
    (
        "ignored shop",
        product_order(),
        {"account": IGNORED_SHOP},
        Decision(T.IGNORED, "Shop 1 is ignored", currency="eur"),
    ),
    (
        "refused order",
        product_order(state="REFUSED"),
        {},
        aborted("Order cannot be processed, status is REFUSED"),
    ),
    (
        "payment not looked up yet",
        PAID_BY_CHARGE,
        {},
        held("Payment ch_1 has not been checked in Stripe yet", needs_payment="ch_1"),
    ),
    (
        "payment looked up under another id",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_2", "succeeded", charge(id="ch_2"))},
        held("Payment ch_1 has not been checked in Stripe yet", needs_payment="ch_1"),
    ),
    (
        "Stripe refused the look-up",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", error="No such charge: 'ch_1'")},
        aborted("No such charge: 'ch_1'"),
    ),
    (
        "Stripe could not answer",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", unavailable="read timeout")},
        held("Payment ch_1 could not be checked in Stripe: read timeout"),
    ),
    (
        "PaymentIntent canceled",
        PAID_BY_INTENT,
        {"payment": PaymentFacts("pi_1", "canceled")},
        aborted("Payment pi_1 has been canceled"),
    ),
    (
        "PaymentIntent not succeeded",
        PAID_BY_INTENT,
        {"payment": PaymentFacts("pi_1", "requires_capture")},
        held("Payment pi_1 is not ready yet, status is requires_capture"),
    ),
    (
        "charge not captured",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", "succeeded", charge(captured=False))},
        held("Payment ch_1 is not ready yet, status is succeeded (not captured)"),
    ),
    (
        "charge refunded",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", "succeeded", charge(refunded=True))},
        aborted("Payment ch_1 has been canceled"),
    ),
    (
        "charge failed",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", "failed", charge("failed"))},
        aborted("Payment ch_1 failed"),
    ),
    (
        "charge pending",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", "pending", charge("pending"))},
        held("Payment ch_1 is not ready yet, status is pending"),
    ),
    (
        "charge in another currency",
        PAID_BY_CHARGE,
        {"payment": PaymentFacts("ch_1", "succeeded", charge(currency="usd"))},
        held("Order currency EUR differs from the currency of payment ch_1 (USD)"),
    ),
    (
        "succeeded PaymentIntent: its charge is the source",
        PAID_BY_INTENT,
        {"payment": PaymentFacts("pi_1", "succeeded", charge(id="ch_9"))},
        Decision(T.PENDING, None, 8073, "eur", "ch_9"),
    ),
    (
        "no payment id anywhere: no source transaction",
        product_order(),
        {},
        Decision(T.PENDING, None, 8073, "eur", None),
    ),
    (
        "one cent is positive",
        single_line_order("0.01"),
        {},
        Decision(T.PENDING, None, 1, "eur", None),
    ),
    (
        "zero is not",
        single_line_order("0"),
        {},
        Decision(T.ABORTED, "Amount must be positive, input was: 0", 0, "eur"),
    ),
    (
        "exactly MAX_AMOUNT fits the column",
        single_line_order("92233720368547758.07"),
        {},
        Decision(T.PENDING, None, MAX_AMOUNT, "eur", None),
    ),
    (
        "one above MAX_AMOUNT does not",
        single_line_order("92233720368547758.08"),
        {},
        held("Amount is too large, input was: 9223372036854775808"),
    ),
]


@pytest.mark.parametrize(
    ("order", "facts", "expected"),
    [pytest.param(order, facts, expected, id=case) for case, order, facts, expected in CASES],
)
def test_every_decision_carries_its_reason_and_currency(order, facts, expected):
    facts = {"account": SHOP, **facts}
    account = facts.pop("account")
    assert evaluate_order_transfer(order, account, **facts) == expected


@pytest.mark.parametrize(
    ("charge_json", "expected"),
    [
        ({}, ChargeFacts("", "", False, False, "")),
        (
            {
                "id": "ch_1",
                "status": "succeeded",
                "captured": True,
                "refunded": True,
                "currency": "EUR",
            },
            ChargeFacts("ch_1", "succeeded", True, True, "eur"),
        ),
    ],
    ids=["empty charge", "refunded charge"],
)
def test_charge_facts(charge_json, expected):
    assert charge_facts(charge_json) == expected


def test_payment_intent_without_status_or_charge():
    assert payment_facts({"id": "pi_1"}) == PaymentFacts("pi_1", "", None)


def test_service_order_without_debit_has_no_payment_reference():
    assert payment_reference(service_order(), None) == ""
