"""Product orders: OR11 (list)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from .common import (
    check_id_limit,
    current_store,
    date_at_or_after,
    date_before,
    date_sort_key,
    json_response,
    parse_filter_datetime,
    split_csv,
)
from .paging import offset_page
from .state import id_key

bp = Blueprint("mirakl_orders", __name__)


@bp.get("/api/orders")
def list_orders() -> Any:
    """OR11, sorted by ``created_date`` ascending.

    Filters: ``order_ids`` and ``commercial_ids`` (CSV or repeated, at most 100 each),
    ``start_date``/``end_date`` (creation, end exclusive), ``start_update_date``/
    ``end_update_date``, ``order_state_codes`` (CSV), ``shop_ids`` (CSV). ``sort``/``order``
    are accepted and ignored. Offset pagination with ``max``/``offset``.
    """
    args = request.args
    order_ids = split_csv(args.getlist("order_ids"))
    check_id_limit("order_ids", order_ids)
    commercial_ids = split_csv(args.getlist("commercial_ids"))
    check_id_limit("commercial_ids", commercial_ids)
    shop_ids = set(split_csv(args.getlist("shop_ids")))
    states = set(split_csv(args.getlist("order_state_codes")))
    start = parse_filter_datetime("start_date", args.get("start_date"))
    end = parse_filter_datetime("end_date", args.get("end_date"))
    update_start = parse_filter_datetime("start_update_date", args.get("start_update_date"))
    update_end = parse_filter_datetime("end_update_date", args.get("end_update_date"))
    wanted_ids, wanted_commercial = set(order_ids), set(commercial_ids)

    def matches(order: dict[str, Any]) -> bool:
        return (
            (not wanted_ids or id_key(order.get("order_id")) in wanted_ids)
            and (not wanted_commercial or id_key(order.get("commercial_id")) in wanted_commercial)
            and (not shop_ids or id_key(order.get("shop_id")) in shop_ids)
            and (not states or order.get("order_state") in states)
            and date_at_or_after(order.get("created_date"), start)
            and date_before(order.get("created_date"), end)
            and date_at_or_after(order.get("last_updated_date"), update_start)
            and date_before(order.get("last_updated_date"), update_end)
        )

    store = current_store()
    with store.lock:
        found = [order for order in store.values("orders") if matches(order)]
        found.sort(key=lambda order: date_sort_key(order.get("created_date")))
        page, headers = offset_page(found)
        return json_response({"orders": page, "total_count": len(found)}, headers)
