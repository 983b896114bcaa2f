"""Pure rules about Mirakl orders (docs/reference-behaviour.md): states and amounts.

Shared by payment validation (aborted amounts), the payment split (amount due, commission,
taxes) and refunds (refunded commission and taxes). Amounts are decimals in major units;
conversion to minor units happens once, in the caller, with ``money.to_minor``.
"""

from __future__ import annotations

from decimal import Decimal

from webapp.services.mirakl.types import LineRefund, ProductOrder, ServiceOrder, ServiceRefund

ZERO = Decimal(0)

PRODUCT_NOT_VALIDATED = frozenset(
    {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}
)
PRODUCT_ABORTED = frozenset({"REFUSED", "CANCELED"})
SERVICE_NOT_VALIDATED = frozenset(
    {"WAITING_SCORING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}
)
SERVICE_ABORTED = frozenset({"ORDER_REFUSED", "ORDER_EXPIRED", "ORDER_CANCELLED"})
LINE_ABORTED = frozenset({"REFUSED", "CANCELED"})
TAX_INCLUDED = "TAX_INCLUDED"

Order = ProductOrder | ServiceOrder


def is_validated(order: Order) -> bool:
    """Accepted by the seller (or further along): money may move."""
    if isinstance(order, ProductOrder):
        return order.state not in PRODUCT_NOT_VALIDATED
    return order.state not in SERVICE_NOT_VALIDATED


def is_aborted(order: Order) -> bool:
    """Refused or cancelled as a whole: nothing is owed."""
    if isinstance(order, ProductOrder):
        return order.state in PRODUCT_ABORTED
    return order.state in SERVICE_ABORTED


def is_paid(order: ProductOrder) -> bool:
    """Mirakl recorded the customer debit (PA01 applied)."""
    return bool(order.customer_debited_date)


def is_tax_included(order: Order) -> bool:
    return order.tax_mode == TAX_INCLUDED


def amount_due(order: Order) -> Decimal:
    """What the customer pays for this logistical order (before commission)."""
    if isinstance(order, ServiceOrder):
        taxes = ZERO if is_tax_included(order) else order.taxes
        return order.price + order.options + taxes
    # total_price already excludes refused and cancelled lines; their taxes must go too.
    taxes = ZERO
    if not is_tax_included(order):
        taxes = sum(
            (
                line.product_taxes + line.shipping_taxes
                for line in order.lines
                if line.state not in LINE_ABORTED
            ),
            ZERO,
        )
    return order.total_price + taxes


def aborted_amount(order: Order) -> Decimal:
    """What was authorised but will not be captured: refused lines and cancelations."""
    if isinstance(order, ServiceOrder):
        return amount_due(order) if is_aborted(order) else ZERO
    with_taxes = not is_tax_included(order)
    total = ZERO
    for line in order.lines:
        if line.state == "REFUSED":
            total += line.total_price
            if with_taxes:
                total += line.product_taxes + line.shipping_taxes
        elif line.state == "CANCELED":
            for cancelation in line.cancelations:
                total += cancelation.amount + (cancelation.taxes if with_taxes else ZERO)
    return total


def commission(order: Order) -> Decimal:
    """The operator's commission on the order."""
    return order.total_commission if isinstance(order, ProductOrder) else order.commission


def order_tax_total(order: Order) -> Decimal:
    """Taxes sent to the tax account under tax split (product: line taxes only, any mode)."""
    if isinstance(order, ServiceOrder):
        return ZERO if is_tax_included(order) else order.taxes
    return sum((line.product_taxes for line in order.lines if line.state not in LINE_ABORTED), ZERO)


def _refund_entry(
    order: Order, refund_id: str, order_line_id: str | None
) -> LineRefund | ServiceRefund | None:
    """The refund entry of the order with this id (on that line, when a line is given)."""
    if isinstance(order, ServiceOrder):
        return next((r for r in order.refunds if r.id == refund_id), None)
    for line in order.lines:
        if order_line_id is not None and line.id != order_line_id:
            continue
        for refund in line.refunds:
            if refund.id == refund_id:
                return refund
    return None


def refunded_commission(order: Order, refund_id: str, order_line_id: str | None = None) -> Decimal:
    """Commission Mirakl gives back with this refund (0 when the refund is not on the order)."""
    entry = _refund_entry(order, refund_id, order_line_id)
    if entry is None:
        return ZERO
    return entry.commission if isinstance(entry, ServiceRefund) else entry.commission_total_amount


def refunded_tax(order: Order, refund_id: str, order_line_id: str | None = None) -> Decimal:
    """Taxes refunded with this refund (shipping taxes + taxes of the refund entry)."""
    entry = _refund_entry(order, refund_id, order_line_id)
    return ZERO if entry is None else entry.taxes
