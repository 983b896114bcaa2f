"""Builders of parsed Mirakl items for pure tests.

Shapes: the fixture shapes of docs/reference-behaviour.md#worked-examples.
"""

from __future__ import annotations

from decimal import Decimal

from webapp.services.mirakl.types import (
    Cancelation,
    LineRefund,
    OrderLine,
    ProductOrder,
    ServiceOrder,
    ServiceRefund,
)

D = Decimal


def line(
    line_id: str = "O-1-1",
    state: str = "SHIPPING",
    total: str = "12.34",
    taxes: tuple[str, ...] = ("1.56", "1.78"),
    shipping_taxes: tuple[str, ...] = ("1.12", "1.34"),
    cancelations: tuple[Cancelation, ...] = (),
    refunds: tuple[LineRefund, ...] = (),
) -> OrderLine:
    return OrderLine(
        id=line_id,
        state=state,
        total_price=D(total),
        product_taxes=sum((D(t) for t in taxes), D(0)),
        shipping_taxes=sum((D(t) for t in shipping_taxes), D(0)),
        cancelations=cancelations,
        refunds=refunds,
    )


def product_order(
    order_id: str = "O-1-A",
    state: str = "SHIPPING",
    total: str = "69.12",
    commission: str = "3.99",
    tax_mode: str = "TAX_EXCLUDED",
    lines: tuple[OrderLine, ...] | None = None,
    currency: str = "eur",
    debited: str = "2024-01-01T00:00:00Z",
    shop_id: int = 1,
    commercial_id: str = "O-1",
    transaction_number: str = "",
) -> ProductOrder:
    if lines is None:
        lines = (
            line("O-1-1", state, "12.34", ("1.56", "1.78"), ("1.12", "1.34")),
            line("O-1-2", state, "56.78", ("2.56", "2.78"), ("2.12", "2.34")),
        )
    return ProductOrder(
        id=order_id,
        commercial_id=commercial_id,
        state=state,
        shop_id=shop_id,
        created_date=None,
        created_raw="2024-01-01T00:00:00Z",
        customer_debited_date=debited,
        currency=currency,
        tax_mode=tax_mode,
        total_price=D(total),
        total_commission=D(commission),
        transaction_number=transaction_number,
        customer_id="customer_basic",
        lines=lines,
    )


def service_order(
    order_id: str = "S-1-A",
    state: str = "ORDER_ACCEPTED",
    price: str = "12.34",
    options: str = "2.46",
    taxes: str = "3.34",
    commission: str = "3.99",
    tax_mode: str = "TAX_EXCLUDED",
    refunds: tuple[ServiceRefund, ...] = (),
    currency: str = "eur",
) -> ServiceOrder:
    return ServiceOrder(
        id=order_id,
        commercial_id="S-1",
        state=state,
        shop_id=1,
        created_date=None,
        created_raw="2024-01-01T00:00:00.000Z",
        currency=currency,
        tax_mode=tax_mode,
        price=D(price),
        options=D(options),
        taxes=D(taxes),
        commission=D(commission),
        customer_id="customer_basic",
        refunds=refunds,
    )
