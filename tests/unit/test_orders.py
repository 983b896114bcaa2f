"""Order amount rules against the reference's worked tables.

See docs/reference-behaviour.md#worked-examples.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.factories import (
    cancelation,
    line,
    line_refund,
    product_order,
    service_order,
    service_refund,
)
from webapp.services.ledger.minor_units import to_minor
from webapp.services.mirakl import orders


def seller_amounts(order, tax_split: bool) -> tuple[int, int]:
    due = orders.amount_due(order) - orders.commission(order)
    tax = orders.order_tax_total(order) if tax_split else Decimal(0)
    return to_minor(due - tax, order.currency), to_minor(tax, order.currency)


NO_TAX_LINES = (
    line("O-1-1", taxes=(), shipping_taxes=()),
    line("O-1-2", "SHIPPING", "56.78", (), ()),
)
PARTIAL_TAX_LINES = (
    line("O-1-1", taxes=("1.56", "1.78"), shipping_taxes=()),
    line("O-1-2", "SHIPPING", "56.78", taxes=(), shipping_taxes=("2.12", "2.34")),
)


@pytest.mark.parametrize(
    ("case", "order", "plain", "split", "tax"),
    [
        ("product basic", product_order(), 8073, 7205, 868),
        ("product no commission", product_order(commission="0"), 8472, 7604, 868),
        ("product no taxes", product_order(lines=NO_TAX_LINES), 6513, 6513, 0),
        ("product TAX_INCLUDED", product_order(tax_mode="TAX_INCLUDED"), 6513, 5645, 868),
        ("product partial tax", product_order(lines=PARTIAL_TAX_LINES), 7293, 6959, 334),
        ("service basic", service_order(), 1415, 1081, 334),
        ("service no commission", service_order(commission="0"), 1814, 1480, 334),
        ("service TAX_INCLUDED", service_order(tax_mode="TAX_INCLUDED"), 1081, 1081, 0),
        ("service no tax", service_order(taxes="0"), 1081, 1081, 0),
        ("service partial tax", service_order(taxes="1.56"), 1237, 1081, 156),
    ],
)
def test_worked_amount_table(case, order, plain, split, tax):
    assert seller_amounts(order, tax_split=False)[0] == plain, case
    assert seller_amounts(order, tax_split=True) == (split, tax), case


def test_refused_and_cancelled_lines_leave_the_amount_due():
    cancelled = line(
        "O-1-2",
        "CANCELED",
        "0",
        (),
        (),
        cancelations=(cancelation("56.78", "9.80"),),
    )
    order = product_order(total="12.34", lines=(line(), cancelled))
    # total_price already excludes the cancelled line; its taxes must not be added either.
    assert orders.amount_due(order) == Decimal("12.34") + Decimal("5.80")
    assert orders.aborted_amount(order) == Decimal("56.78") + Decimal("9.80")


def test_partially_refused_commercial_order_captures_the_accepted_half():
    """CLOSED + REFUSED orders of 84.72 each → 16944 − 8472 captured (worked example)."""
    accepted = product_order("O-1-A", state="CLOSED")
    refused = product_order(
        "O-1-B",
        state="REFUSED",
        lines=(
            line("O-1-B-1", "REFUSED", "12.34"),
            line("O-1-B-2", "REFUSED", "56.78", ("2.56", "2.78"), ("2.12", "2.34")),
        ),
    )
    authorised = 16944
    captured = authorised - sum(
        to_minor(orders.aborted_amount(o), "eur") for o in (accepted, refused)
    )
    assert captured == 8472


@pytest.mark.parametrize(
    ("state", "validated", "aborted"),
    [
        ("WAITING_ACCEPTANCE", False, False),
        ("WAITING_DEBIT_PAYMENT", False, False),
        ("SHIPPING", True, False),
        ("CLOSED", True, False),
        ("REFUSED", True, True),
        ("CANCELED", True, True),
    ],
)
def test_product_states(state, validated, aborted):
    order = product_order(state=state)
    assert (orders.is_validated(order), orders.is_aborted(order)) == (validated, aborted)


@pytest.mark.parametrize(
    ("state", "validated", "aborted"),
    [
        ("WAITING_SCORING", False, False),
        ("ORDER_PENDING", True, False),
        ("ORDER_ACCEPTED", True, False),
        ("ORDER_EXPIRED", True, True),
        ("ORDER_CANCELLED", True, True),
    ],
)
def test_service_states(state, validated, aborted):
    order = service_order(state=state)
    assert (orders.is_validated(order), orders.is_aborted(order)) == (validated, aborted)


def test_refunded_commission_and_tax_by_refund_and_line():
    refund = line_refund("R-1", "12.34", "1.23", "0.50")
    order = product_order(lines=(line(refunds=(refund,)), line("O-1-2")))
    assert orders.refunded_commission(order, "R-1", "O-1-1") == Decimal("1.23")
    assert orders.refunded_tax(order, "R-1") == Decimal("0.50")
    assert orders.refunded_commission(order, "R-1", "O-1-2") == 0
    assert orders.refunded_commission(order, "R-404") == 0
    service = service_order(refunds=(service_refund("R-2", "5", "0.7"),))
    assert orders.refunded_commission(service, "R-2") == Decimal("0.7")
    # docs/reference-behaviour.md#worked-examples: refund 12.34, commission 1.23 → reversal 1111.
    assert to_minor(Decimal("12.34") - orders.refunded_commission(order, "R-1"), "eur") == 1111
