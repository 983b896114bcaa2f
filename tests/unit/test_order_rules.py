"""Pure Mirakl order rules at their edges (docs/reference-behaviour.md).

The worked amounts and states live in test_orders.py; this file pins what mutation testing
found loose (docs/testing.md): cancelation taxes under ``TAX_INCLUDED``, look-ups of
a refund that is not there (or not on the line asked for), and amounts that stay decimals
when no line counts.
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
from webapp.services.mirakl import orders

D = Decimal
CANCELED_LINE = line("O-1-1", "CANCELED", "0", cancelations=(cancelation("12.34", "3.00"),))
REFUSED_LINE = line("O-1-2", "REFUSED", "56.78", ("2.00",), ("1.00",))


@pytest.mark.parametrize(
    ("tax_mode", "aborted"),
    [
        ("TAX_EXCLUDED", D("12.34") + D("3.00") + D("56.78") + D("3.00")),
        ("TAX_INCLUDED", D("12.34") + D("56.78")),
    ],
)
def test_aborted_amount_counts_taxes_only_when_excluded(tax_mode, aborted):
    order = product_order(tax_mode=tax_mode, lines=(CANCELED_LINE, REFUSED_LINE))
    assert orders.aborted_amount(order) == aborted


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(product_order(lines=()), id="no lines"),
        pytest.param(product_order(lines=(REFUSED_LINE,)), id="only a refused line"),
    ],
)
def test_tax_total_of_no_counted_line_is_a_decimal_zero(order):
    total = orders.order_tax_total(order)
    assert (type(total), total) == (Decimal, D(0))


R1 = line_refund("R-1", "12.34", "1.23", "0.50")
R2 = line_refund("R-2", "5.00", "0.70", "0.20")
TWO_LINES = product_order(lines=(line("O-1-1", refunds=(R1,)), line("O-1-2", refunds=(R2,))))
SERVICE = service_order(refunds=(service_refund("R-3", "5", "0.7", "0.4"),))


@pytest.mark.parametrize(
    ("order", "refund_id", "line_id", "commission", "tax"),
    [
        pytest.param(TWO_LINES, "R-2", "O-1-2", D("0.70"), D("0.20"), id="on the second line"),
        pytest.param(TWO_LINES, "R-2", None, D("0.70"), D("0.20"), id="any line"),
        pytest.param(TWO_LINES, "R-1", "O-1-2", D(0), D(0), id="asked on the wrong line"),
        pytest.param(TWO_LINES, "R-404", None, D(0), D(0), id="product refund not there"),
        pytest.param(SERVICE, "R-3", None, D("0.7"), D("0.4"), id="service refund"),
        pytest.param(SERVICE, "R-404", None, D(0), D(0), id="service refund not there"),
    ],
)
def test_refunded_commission_and_tax(order, refund_id, line_id, commission, tax):
    assert orders.refunded_commission(order, refund_id, line_id) == commission
    assert orders.refunded_tax(order, refund_id, line_id) == tax
