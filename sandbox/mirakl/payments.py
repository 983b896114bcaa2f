"""Product-order payments: PA11/PA01 (customer debits) and PA12/PA02 (refunds).

Pending debits and refunds are derived from the stored OR11 orders:

* PA11 lists orders in ``WAITING_DEBIT_PAYMENT`` without ``customer_debited_date``; their
  ``amount`` is what the customer owes: ``total_price`` plus, unless the order is
  ``TAX_INCLUDED``, the taxes and shipping taxes of its lines not REFUSED/CANCELED.
* PA12 lists orders having refunds (``order_lines[].refunds[]``) in state
  ``WAITING_REFUND_PAYMENT``, with only those refunds.

PA01 and PA02 validate every entry before changing anything (all or nothing, 400 otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from flask import Blueprint

from .common import (
    ApiError,
    as_dict,
    current_store,
    date_sort_key,
    decimal_to_json,
    dicts,
    json_body,
    json_response,
    now_iso,
    to_decimal,
    waiting_refund,
)
from .paging import offset_page
from .state import WAITING_DEBIT_PAYMENT, WAITING_REFUND_PAYMENT, id_key

bp = Blueprint("mirakl_payments", __name__)

PAYMENT_STATUSES = ("OK", "REFUSED")
EXCLUDED_LINE_STATES = frozenset({"REFUSED", "CANCELED"})


# --- amounts ---------------------------------------------------------------------------------


def _taxes(line: dict[str, Any]) -> Decimal:
    entries = dicts(line.get("shipping_taxes")) + dicts(line.get("taxes"))
    return sum((to_decimal(tax.get("amount")) or Decimal(0) for tax in entries), Decimal(0))


def debit_amount(order: dict[str, Any]) -> Any:
    """Amount to debit for an order (raw ``total_price`` when it is not numeric)."""
    total = to_decimal(order.get("total_price"))
    if total is None:
        return order.get("total_price")
    if order.get("order_tax_mode") != "TAX_INCLUDED":
        for line in dicts(order.get("order_lines")):
            if line.get("order_line_state") not in EXCLUDED_LINE_STATES:
                total += _taxes(line)
    return decimal_to_json(total)


def _customer_id(order: dict[str, Any]) -> Any:
    return as_dict(order.get("customer")).get("customer_id")


def _with_offer(item: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """Add the line's ``offer_id`` to a PA11/PA12 line item when the order line has one."""
    if "offer_id" in line:
        item["offer_id"] = line["offer_id"]
    return item


def _sorted_orders() -> list[dict[str, Any]]:
    orders = current_store().values("orders")
    return sorted(orders, key=lambda order: date_sort_key(order.get("created_date")))


# --- PA11 / PA01 -----------------------------------------------------------------------------


def _waiting_debit(order: dict[str, Any]) -> bool:
    return order.get("order_state") == WAITING_DEBIT_PAYMENT and not order.get(
        "customer_debited_date"
    )


def pa11_item(order: dict[str, Any]) -> dict[str, Any]:
    """The PA11 entry of a product order waiting for its debit (the unit tests' too)."""
    return {
        "order_id": order.get("order_id"),
        "order_commercial_id": order.get("commercial_id"),
        "customer_id": _customer_id(order),
        "shop_id": order.get("shop_id"),
        "amount": debit_amount(order),
        "currency_iso_code": order.get("currency_iso_code"),
        "payment_workflow": order.get("payment_workflow"),
        "order_lines": {
            "order_line": [
                _with_offer(
                    {
                        "order_line_id": line.get("order_line_id"),
                        "order_line_amount": line.get("total_price"),
                        "order_line_quantity": line.get("quantity", 1),
                    },
                    line,
                )
                for line in dicts(order.get("order_lines"))
            ]
        },
    }


@bp.get("/api/payment/debit")
def list_pending_debits() -> Any:
    """PA11: ``{"orders": {"order": [...], "total_count": N}}``, offset pagination."""
    store = current_store()
    with store.lock:
        pending = [pa11_item(order) for order in _sorted_orders() if _waiting_debit(order)]
        page, headers = offset_page(pending)
        return json_response({"orders": {"order": page, "total_count": len(pending)}}, headers)


def _entries(body: Any, key: str) -> list[Any]:
    entries = body.get(key) if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, f'The request body must be {{"{key}": [...]}} with at least one entry')
    return entries


@bp.put("/api/payment/debit")
def confirm_debits() -> Any:
    """PA01: OK → ``customer_debited_date`` set, state SHIPPING; REFUSED → state CANCELED."""
    entries = _entries(json_body(), "orders")
    store = current_store()
    with store.lock:
        plan: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seen: set[str] = set()
        for entry in entries:
            order, order_id = _check_debit_entry(entry)
            if order_id in seen:
                raise ApiError(400, f"Order {order_id} is listed more than once")
            seen.add(order_id)
            plan.append((order, entry))
        for order, entry in plan:
            _apply_debit(order, entry)
    return "", 204


def _check_debit_entry(entry: Any) -> tuple[dict[str, Any], str]:
    if not isinstance(entry, dict):
        raise ApiError(400, "Each order must be a JSON object")
    order_id = id_key(entry.get("order_id"))
    if order_id is None:
        raise ApiError(400, "order_id is required")
    order = current_store().get("orders", order_id)
    if order is None:
        raise ApiError(400, f"Order {order_id} not found")
    if not _waiting_debit(order):
        raise ApiError(
            400,
            f"Order {order_id} is not waiting for debit payment (state {order.get('order_state')})",
        )
    if entry.get("payment_status") not in PAYMENT_STATUSES:
        raise ApiError(
            400, f"Invalid payment_status {entry.get('payment_status')!r} for order {order_id}"
        )
    customer_id = id_key(entry.get("customer_id"))
    if customer_id is None:
        raise ApiError(400, f"customer_id is required for order {order_id}")
    expected = id_key(_customer_id(order))
    if expected is not None and customer_id != expected:
        raise ApiError(400, f"Customer {customer_id} does not match order {order_id}")
    return order, order_id


def _apply_debit(order: dict[str, Any], entry: dict[str, Any]) -> None:
    now = now_iso()
    order["last_updated_date"] = now
    if entry["payment_status"] == "REFUSED":
        order["order_state"] = "CANCELED"
        return
    order["order_state"] = "SHIPPING"
    order["customer_debited_date"] = now
    order["transaction_date"] = entry.get("transaction_date") or now
    if entry.get("transaction_number") is not None:
        order["transaction_number"] = entry["transaction_number"]


# --- PA12 / PA02 -----------------------------------------------------------------------------


def _waiting_refunds(line: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in dicts(line.get("refunds")) if r.get("state") == WAITING_REFUND_PAYMENT]


def _pa12_item(order: dict[str, Any]) -> dict[str, Any] | None:
    lines = []
    total = Decimal(0)
    for line in dicts(order.get("order_lines")):
        refunds = _waiting_refunds(line)
        if not refunds:
            continue
        total += sum((to_decimal(r.get("amount")) or Decimal(0) for r in refunds), Decimal(0))
        lines.append(
            _with_offer(
                {
                    "order_line_id": line.get("order_line_id"),
                    "order_line_amount": line.get("total_price"),
                    "refunds": {
                        "refund": [{"id": r.get("id"), "amount": r.get("amount")} for r in refunds]
                    },
                },
                line,
            )
        )
    if not lines:
        return None
    return {
        "order_id": order.get("order_id"),
        "order_commercial_id": order.get("commercial_id"),
        "shop_id": order.get("shop_id"),
        "customer_id": _customer_id(order),
        "currency_iso_code": order.get("currency_iso_code"),
        "amount": decimal_to_json(total),
        "payment_workflow": order.get("payment_workflow"),
        "order_lines": {"order_line": lines},
    }


@bp.get("/api/payment/refund")
def list_pending_refunds() -> Any:
    """PA12: ``{"orders": {"order": [...], "total_count": N}}``, offset pagination."""
    store = current_store()
    with store.lock:
        items = [item for order in _sorted_orders() if (item := _pa12_item(order)) is not None]
        page, headers = offset_page(items)
        return json_response({"orders": {"order": page, "total_count": len(items)}}, headers)


def _all_refunds() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every ``(order, refund)`` pair of the stored product orders."""
    for order in current_store().values("orders"):
        for line in dicts(order.get("order_lines")):
            for refund in dicts(line.get("refunds")):
                yield order, refund


@bp.put("/api/payment/refund")
def confirm_refunds() -> Any:
    """PA02: OK → refund REFUNDED with the transaction number; REFUSED → refund REFUSED."""
    entries = _entries(json_body(), "refunds")
    store = current_store()
    with store.lock:
        index = {id_key(refund.get("id")): (order, refund) for order, refund in _all_refunds()}
        plan: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []
        seen: set[str] = set()
        for entry in entries:
            refund_id, order, refund = waiting_refund(
                entry, "refund_id", index, seen, (WAITING_REFUND_PAYMENT,)
            )
            if entry.get("payment_status") not in PAYMENT_STATUSES:
                raise ApiError(
                    400,
                    f"Invalid payment_status {entry.get('payment_status')!r} "
                    f"for refund {refund_id}",
                )
            plan.append((order, refund, entry))
        now = now_iso()
        for order, refund, entry in plan:
            refund["state"] = "REFUNDED" if entry["payment_status"] == "OK" else "REFUSED"
            refund["transaction_date"] = entry.get("transaction_date") or now
            if entry.get("transaction_number") is not None:
                refund["transaction_number"] = entry["transaction_number"]
            order["last_updated_date"] = now
    return "", 204
