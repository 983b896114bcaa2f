"""Mirakl items for pure tests, exactly as the Mirakl sandbox would serve them.

Each item is built as Mirakl JSON by the sandbox's builders (``sandbox/mirakl/demo.py``, which
the integration tests, the benchmark and the demo use too) and read by the client's own
parsers (``webapp/services/mirakl/types.py``). Parts of an order (``line``, ``cancelation``,
``line_refund``, ``service_refund``) stay JSON, to be handed to the order that holds them;
whole items come back parsed. Shapes and defaults: the worked examples of
docs/reference-behaviour.md#worked-examples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sandbox.mirakl.demo import (
    LINE1_TAXES,
    make_cancelation,
    make_invoice,
    make_order_line,
    make_product_order,
    make_refund_line,
    make_service_debit,
    make_service_order,
    make_service_refund,
    make_shop,
)
from sandbox.mirakl.payments import pa11_item
from webapp.models import RefundType
from webapp.services.mirakl.types import (
    Invoice,
    PendingDebit,
    ProductOrder,
    ServiceDebit,
    ServiceOrder,
    Shop,
    parse_invoice,
    parse_pending_debit,
    parse_product_order,
    parse_service_debit,
    parse_service_order,
    parse_shop,
)
from webapp.services.refunds.rules import RefundFacts

Json = dict[str, Any]


def _taxes(amounts: Iterable[str]) -> list[tuple[str, str]]:
    """Tax amounts as the builders' ``(amount, code)`` pairs (the code plays no part)."""
    return [(amount, "ECO_TAX") for amount in amounts]


def cancelation(amount: str, taxes: str = "0") -> Json:
    """A line's cancelation of ``amount`` with ``taxes`` cancelled with it."""
    return make_cancelation(amount, taxes=_taxes([taxes]))


def line_refund(refund_id: str, amount: str, commission: str, taxes: str = "0") -> Json:
    """A product refund entry of a line (waiting for payment, as PA12 lists it)."""
    return make_refund_line(refund_id, amount, commission, taxes=_taxes([taxes]))


def line(
    line_id: str = "O-1-1",
    state: str = "SHIPPING",
    total: str = "12.34",
    taxes: tuple[str, ...] = ("1.56", "1.78"),
    shipping_taxes: tuple[str, ...] = ("1.12", "1.34"),
    cancelations: Sequence[Json] = (),
    refunds: Sequence[Json] = (),
) -> Json:
    """An OR11 order line; the defaults are the first line of the worked example."""
    return make_order_line(
        line_id,
        total,
        state,
        shipping_taxes=_taxes(shipping_taxes),
        taxes=_taxes(taxes),
        refunds=refunds,
        cancelations=cancelations,
    )


def product_order(
    order_id: str = "O-1-A",
    state: str = "SHIPPING",
    total: str | None = None,
    commission: str = "3.99",
    tax_mode: str = "TAX_EXCLUDED",
    lines: Sequence[Json] | None = None,
    currency: str = "EUR",
    debited: bool | None = None,
    shop_id: int = 1,
    commercial_id: str | None = None,
    transaction_number: str | None = None,
) -> ProductOrder:
    """An OR11 product order; by default the worked example's two lines, 69.12 in all.

    ``total`` defaults to the lines not refused or cancelled; ``debited`` to whether the
    customer has paid in ``state``.
    """
    return parse_product_order(
        make_product_order(
            order_id,
            commercial_id,
            shop_id,
            state,
            total,
            commission,
            None if lines is None else list(lines),
            tax_mode=tax_mode,
            currency=currency,
            debited=debited,
            transaction_number=transaction_number,
        )
    )


def pending_debit(
    order_id: str = "O-1-A", amount: str | None = None, currency: str = "EUR"
) -> PendingDebit:
    """The PA11 entry of a product order waiting for its debit: by default the worked
    example's order (84.72, taxes included); with ``amount``, an order of one untaxed line."""
    lines = None if amount is None else [make_order_line(f"{order_id}-1", amount)]
    order = make_product_order(
        order_id, state="WAITING_DEBIT_PAYMENT", lines=lines, currency=currency
    )
    return parse_pending_debit(pa11_item(order))


def service_refund(refund_id: str, amount: str, commission: str, taxes: str = "0") -> Json:
    """A service order's refund entry (waiting for payment, as SPA12 lists it)."""
    return make_service_refund(refund_id, amount, commission, taxes=_taxes([taxes]))


def service_order(
    order_id: str = "S-1-A",
    state: str = "ORDER_ACCEPTED",
    price: str = "12.34",
    taxes: str | None = None,
    commission: str = "3.99",
    tax_mode: str = "TAX_EXCLUDED",
    refunds: Sequence[Json] = (),
    currency: str = "EUR",
) -> ServiceOrder:
    """A SOR11 service order: price 12.34, options 2.46, taxes 3.34 (or ``taxes`` in one)."""
    return parse_service_order(
        make_service_order(
            order_id,
            state=state,
            price=price,
            commission=commission,
            tax_mode=tax_mode,
            taxes=LINE1_TAXES if taxes is None else _taxes([taxes]),
            refunds=refunds,
            currency=currency,
        )
    )


def service_debit(
    order_id: str = "S-1-A",
    state: str = "OK",
    transaction_number: str | None = None,
    amount: str = "18.14",
) -> ServiceDebit:
    """A SPA11 service debit: ``OK`` is paid, ``WAITING`` not yet."""
    return parse_service_debit(
        make_service_debit(order_id, amount, state, transaction_number=transaction_number)
    )


def shop(
    shop_id: int = 12,
    name: str | None = None,
    is_professional: bool = False,
    email: str | None = None,
    web_site: str | None = None,
    phone: str | None = None,
    additional_fields: Mapping[str, Any] | None = None,
) -> Shop:
    """An S20 shop; name and contact default to ``Shop 12``, ``seller12@example.com``…"""
    contact = {"email": email, "web_site": web_site, "phone": phone}
    overrides = {} if name is None else {"shop_name": name}
    return parse_shop(
        make_shop(
            shop_id,
            contact={key: value for key, value in contact.items() if value is not None},
            additional_fields=additional_fields,
            is_professional=is_professional,
            **overrides,
        )
    )


def invoice(
    invoice_id: int = 1,
    created: str = "2024-01-02T10:00:00Z",
    amount_transferred: str = "12.34",
    subscription: str = "-9.99",
    credits: str = "56.78",
    other_invoices: str = "-98.76",
) -> Invoice:
    """An IV01 invoice of shop 1; the amounts are the worked example's."""
    return parse_invoice(
        make_invoice(
            invoice_id,
            1,
            date_created=created,
            amount_transferred=amount_transferred,
            subscription=subscription,
            other_credits=credits,
            other_invoices=other_invoices,
        )
    )


# ------------------------------------------------------------------ refund rule inputs


def refund_facts(**overrides: Any) -> RefundFacts:
    """A product refund of 12.34 EUR on line ``O-1-1`` (what ``refunds/sync.py`` reads)."""
    values: dict[str, Any] = {
        "mirakl_refund_id": "1100",
        "type": RefundType.PRODUCT_ORDER,
        "amount": 1234,
        "currency": "eur",
        "order_line_id": "O-1-1",
        "stripe_refund_id": None,
    }
    return RefundFacts(**{**values, **overrides})


def stripe_charge(**overrides: Any) -> dict[str, Any]:
    """A captured 84.72 EUR charge as Stripe returns it."""
    values: dict[str, Any] = {
        "id": "ch_1",
        "status": "succeeded",
        "captured": True,
        "refunded": False,
        "amount": 8472,
        "amount_refunded": 0,
        "currency": "eur",
    }
    return {**values, **overrides}
