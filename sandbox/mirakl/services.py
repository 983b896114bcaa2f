"""Service orders (MMS): SOR11 orders, SPA11/SPA01 debits, SPA12/SPA02 refunds.

All lists use seek pagination (:mod:`.paging`). Service refunds live in the stored service
orders (``refunds[]`` with ``state``); SPA12 lists those in a waiting state (``WAITING``, or
``WAITING_REFUND_PAYMENT``) and SPA02 moves them to ``OK`` or ``REFUSED``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from werkzeug.datastructures import MultiDict

from .common import (
    ApiError,
    check_id_limit,
    current_store,
    date_at_or_after,
    date_before,
    date_sort_key,
    dicts,
    json_body,
    json_response,
    now_iso_ms,
    parse_filter_datetime,
    split_csv,
    waiting_refund,
)
from .paging import seek_body, seek_request
from .state import SERVICE_REFUND_WAITING_STATES, id_key

bp = Blueprint("mirakl_services", __name__)

PAYMENT_STATUSES = ("OK", "REFUSED")
SERVICE_WAITING_DEBIT_STATES = ("WAITING_DEBIT", "WAITING_DEBIT_PAYMENT")


def _sorted_service_orders() -> list[dict[str, Any]]:
    orders = current_store().values("service_orders")
    return sorted(orders, key=lambda order: date_sort_key(order.get("date_created")))


def _id_filter(args: MultiDict[str, str], name: str) -> list[str]:
    values = split_csv(args.getlist(name))
    check_id_limit(name, values)
    return values


# --- SOR11 -----------------------------------------------------------------------------------


def _sor11_filters(args: MultiDict[str, str]) -> dict[str, Any]:
    for name in ("date_created_start", "date_created_end"):
        parse_filter_datetime(name, args.get(name))
    return {
        "order_id": _id_filter(args, "order_id"),
        "commercial_order_id": _id_filter(args, "commercial_order_id"),
        "date_created_start": args.get("date_created_start") or None,
        "date_created_end": args.get("date_created_end") or None,
    }


@bp.get("/api/mms/orders")
def list_service_orders() -> Any:
    """SOR11: filters ``order_id`` and ``commercial_order_id`` (repeated keys, at most 100),
    ``date_created_start``/``date_created_end``; sorted by ``date_created`` ascending."""
    seek = seek_request("SOR11", _sor11_filters)
    ids = set(seek.filters.get("order_id") or [])
    commercial = set(seek.filters.get("commercial_order_id") or [])
    start = parse_filter_datetime("date_created_start", seek.filters.get("date_created_start"))
    end = parse_filter_datetime("date_created_end", seek.filters.get("date_created_end"))

    def matches(order: dict[str, Any]) -> bool:
        commercial_ids = {
            id_key(order.get("commercial_order_id")),
            id_key(order.get("commercial_id")),
        }
        return (
            (not ids or id_key(order.get("id")) in ids)
            and (not commercial or bool(commercial_ids & commercial))
            and date_at_or_after(order.get("date_created"), start)
            and date_before(order.get("date_created"), end)
        )

    store = current_store()
    with store.lock:
        found = [order for order in _sorted_service_orders() if matches(order)]
        page, token = seek.page(found)
        return json_response(seek_body(page, token))


# --- SPA11 / SPA01 ---------------------------------------------------------------------------


@bp.get("/api/mms/debits")
def list_service_debits() -> Any:
    """SPA11: the stored service debits, filter ``order_id`` (repeated, at most 100)."""
    seek = seek_request("SPA11", lambda args: {"order_id": _id_filter(args, "order_id")})
    ids = set(seek.filters.get("order_id") or [])
    store = current_store()
    with store.lock:
        found = [
            debit
            for debit in store.values("service_debits")
            if not ids or id_key(debit.get("order_id")) in ids
        ]
        page, token = seek.page(found)
        return json_response(seek_body(page, token))


@bp.put("/api/mms/debits")
def confirm_service_debits() -> Any:
    """SPA01: body ``{"orders": [{order_id, payment_status: OK|REFUSED, ...}]}``; moves the
    matching ``WAITING`` debits to ``OK``/``REFUSED`` (all or nothing), and their service
    orders waiting for the debit to ``ORDER_PENDING`` / ``ORDER_CANCELLED``."""
    body = json_body()
    entries = body.get("orders") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, 'The request body must be {"orders": [...]} with at least one entry')
    store = current_store()
    with store.lock:
        plan: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise ApiError(400, "Each order must be a JSON object")
            order_id = id_key(entry.get("order_id"))
            debit = store.get("service_debits", order_id)
            if debit is None or debit.get("state") != "WAITING":
                raise ApiError(400, f"Order {order_id} is not waiting for debit payment")
            status = entry.get("payment_status", entry.get("state"))
            if status not in PAYMENT_STATUSES:
                raise ApiError(400, f"Invalid payment_status {status!r} for order {order_id}")
            plan.append((debit, {**entry, "payment_status": status}))
        for debit, entry in plan:
            debit["state"] = entry["payment_status"]
            if entry.get("transaction_number") is not None:
                debit["transaction_number"] = entry["transaction_number"]
            _apply_service_debit(store.get("service_orders", id_key(entry.get("order_id"))), entry)
    return "", 204


def _apply_service_debit(order: dict[str, Any] | None, entry: dict[str, Any]) -> None:
    """As Mirakl does: an order waiting for its debit goes on (OK) or is cancelled (REFUSED)."""
    if order is None or order.get("state") not in SERVICE_WAITING_DEBIT_STATES:
        return
    order["state"] = "ORDER_PENDING" if entry["payment_status"] == "OK" else "ORDER_CANCELLED"


# --- SPA12 / SPA02 ---------------------------------------------------------------------------


def _waiting_service_refunds() -> list[dict[str, Any]]:
    items = []
    for order in _sorted_service_orders():
        for refund in dicts(order.get("refunds")):
            if refund.get("state") in SERVICE_REFUND_WAITING_STATES:
                items.append(
                    {
                        "id": refund.get("id"),
                        "order_id": order.get("id"),
                        "amount": refund.get("amount"),
                        "currency_code": order.get("currency_code"),
                        "state": "WAITING",
                    }
                )
    return items


@bp.get("/api/mms/refunds")
def list_service_refunds() -> Any:
    """SPA12: service refunds waiting for payment, ``{"data": [...]}`` with seek paging."""
    seek = seek_request("SPA12", lambda args: {})
    store = current_store()
    with store.lock:
        page, token = seek.page(_waiting_service_refunds())
        return json_response(seek_body(page, token))


@bp.put("/api/mms/refunds")
def confirm_service_refunds() -> Any:
    """SPA02: body is a bare JSON array ``[{id, order_id, amount, currency_code,
    state: OK|REFUSED, transaction_number}]`` (all or nothing)."""
    entries = json_body()
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, "The request body must be a non-empty JSON array of refunds")
    store = current_store()
    with store.lock:
        index = {
            id_key(refund.get("id")): (order, refund)
            for order in store.values("service_orders")
            for refund in dicts(order.get("refunds"))
        }
        plan: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seen: set[str] = set()
        for entry in entries:
            refund_id, order, refund = waiting_refund(
                entry, "id", index, seen, SERVICE_REFUND_WAITING_STATES
            )
            given_order = id_key(entry.get("order_id"))
            if given_order is not None and given_order != id_key(order.get("id")):
                raise ApiError(400, f"Refund {refund_id} does not belong to order {given_order}")
            if entry.get("state") not in PAYMENT_STATUSES:
                raise ApiError(400, f"Invalid state {entry.get('state')!r} for refund {refund_id}")
            plan.append((refund, entry))
        now = now_iso_ms()
        for refund, entry in plan:
            refund["state"] = entry["state"]
            refund["transaction_date"] = now
            if entry.get("transaction_number") is not None:
                refund["transaction_number"] = entry["transaction_number"]
    return "", 204
