"""Accounting documents: IV01 (list invoices)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from .common import (
    current_store,
    date_at_or_after,
    date_before,
    date_sort_key,
    json_response,
    parse_filter_datetime,
)
from .paging import offset_page
from .state import id_key

bp = Blueprint("mirakl_invoices", __name__)


@bp.get("/api/invoices")
def list_invoices() -> Any:
    """IV01, sorted by ``date_created`` ascending, offset pagination.

    Filters: ``start_date``/``end_date`` (creation, end exclusive), ``shop`` (shop id),
    ``currency``, and ``type`` (only when given and not ``ALL``; an invoice without a ``type``
    counts as ``AUTO_INVOICE``). Other IV01 parameters are accepted and ignored.
    """
    args = request.args
    start = parse_filter_datetime("start_date", args.get("start_date"))
    end = parse_filter_datetime("end_date", args.get("end_date"))
    shop = args.get("shop") or None
    currency = args.get("currency") or None
    doc_type = args.get("type") or None

    def matches(invoice: dict[str, Any]) -> bool:
        return (
            (shop is None or id_key(invoice.get("shop_id")) == shop)
            and (currency is None or invoice.get("currency_iso_code") == currency)
            and (doc_type in (None, "ALL") or invoice.get("type", "AUTO_INVOICE") == doc_type)
            and date_at_or_after(invoice.get("date_created"), start)
            and date_before(invoice.get("date_created"), end)
        )

    store = current_store()
    with store.lock:
        found = [invoice for invoice in store.values("invoices") if matches(invoice)]
        found.sort(key=lambda invoice: date_sort_key(invoice.get("date_created")))
        page, headers = offset_page(found)
        return json_response({"invoices": page, "total_count": len(found)}, headers)
