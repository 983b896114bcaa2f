"""Shops: S20 (list) and S07 (patch)."""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, request

from .common import (
    ApiError,
    as_dict,
    as_list,
    check_id_limit,
    current_store,
    date_at_or_after,
    json_body,
    json_response,
    now_iso,
    parse_filter_datetime,
    split_csv,
)
from .paging import offset_page
from .state import id_key

bp = Blueprint("mirakl_shops", __name__)


@bp.get("/api/shops")
def list_shops() -> Any:
    """S20: filters ``shop_ids`` (CSV, at most 100), ``updated_since``; ``paginate`` (default
    true) with ``max``/``offset``. ``domains``, ``state`` and other parameters are ignored."""
    shop_ids = split_csv(request.args.getlist("shop_ids"))
    check_id_limit("shop_ids", shop_ids)
    wanted = set(shop_ids)
    updated_since = parse_filter_datetime("updated_since", request.args.get("updated_since"))
    paginate = request.args.get("paginate", "true").strip().lower() != "false"
    store = current_store()
    with store.lock:
        shops = [
            shop
            for shop in store.values("shops")
            if (not wanted or id_key(shop.get("shop_id")) in wanted)
            and date_at_or_after(shop.get("last_updated_date"), updated_since)
        ]
        page, headers = offset_page(shops) if paginate else (shops, {})
        return json_response({"shops": page, "total_count": len(shops)}, headers)


@bp.put("/api/shops")
def update_shops() -> Any:
    """S07: patch shops; per-shop errors are reported inside a 200 ``shop_returns`` list."""
    body = json_body()
    entries = body.get("shops") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ApiError(400, 'The request body must be {"shops": [...]} with at least one shop')
    store = current_store()
    with store.lock:
        return json_response({"shop_returns": [_update_shop(entry) for entry in entries]})


def _shop_error(shop_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"shop_error": {"shop_id": shop_id, "errors": [{"code": code, "message": message}]}}


def _update_shop(entry: Any) -> dict[str, Any]:
    """Apply one S07 entry (caller holds the store lock)."""
    if not isinstance(entry, dict):
        return _shop_error(None, "INVALID_SHOP", "Each shop must be a JSON object")
    shop_id = entry.get("shop_id")
    if id_key(shop_id) is None:
        return _shop_error(shop_id, "SHOP_ID_MISSING", "shop_id is required")
    store = current_store()
    shop = store.get("shops", shop_id)
    if shop is None:
        return _shop_error(shop_id, "SHOP_NOT_FOUND", f"Shop {shop_id} not found")
    if id_key(shop_id) in store.s07_failures:
        return _shop_error(shop_id, "SHOP_UPDATE_ERROR", f"Shop {shop_id} could not be updated")
    try:
        updated = _patched(shop, entry)
    except ValueError as exc:
        return _shop_error(shop_id, "INVALID_FIELD", str(exc))
    shop.clear()
    shop.update(updated)
    return {"shop_updated": copy.deepcopy(shop)}


def _patched(shop: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``shop`` with the S07 ``entry`` applied; ``ValueError`` if a field is invalid."""
    result = copy.deepcopy(shop)
    changed = False
    if "shop_additional_fields" in entry:
        result["shop_additional_fields"] = _merge_additional_fields(
            result.get("shop_additional_fields"), entry["shop_additional_fields"]
        )
        changed = True
    if "kyc" in entry:
        kyc = entry["kyc"]
        if not isinstance(kyc, dict) or not isinstance(kyc.get("status"), str):
            raise ValueError("kyc must be an object with a status")
        reason = kyc.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            raise ValueError("kyc.reason must be a string of at most 1000 characters")
        result["kyc"] = {**as_dict(result.get("kyc")), **kyc}
        changed = True
    if "payment_blocked" in entry:
        details = dict(as_dict(result.get("payment_details")))
        details["payment_blocked"] = bool(entry["payment_blocked"])
        result["payment_details"] = details
        changed = True
    if "suspend" in entry:
        result["shop_state"] = "SUSPENDED" if entry["suspend"] else "OPEN"
        changed = True
    if "email" in entry:
        result["contact_informations"] = {
            **as_dict(result.get("contact_informations")),
            "email": entry["email"],
        }
        changed = True
    if "operator_internal_id" in entry:
        result["operator_internal_id"] = entry["operator_internal_id"]
        changed = True
    if changed:
        result["last_updated_date"] = now_iso()
    return result


def _merge_additional_fields(current: Any, given: Any) -> list[dict[str, Any]]:
    """Merge ``[{code, value}]`` into the shop's additional fields by ``code``."""
    if not isinstance(given, list):
        raise ValueError("shop_additional_fields must be a list")
    merged = [dict(field) for field in as_list(current) if isinstance(field, dict)]
    by_code = {field.get("code"): field for field in merged}
    for field in given:
        if not isinstance(field, dict) or not isinstance(field.get("code"), str):
            raise ValueError("each additional field needs a code")
        existing = by_code.get(field["code"])
        if existing is None:
            existing = {"code": field["code"], "type": field.get("type", "STRING")}
            merged.append(existing)
            by_code[field["code"]] = existing
        existing["value"] = field.get("value")
    return merged
