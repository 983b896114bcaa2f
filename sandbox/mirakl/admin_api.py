"""Control API of the sandbox under ``/_sandbox/`` (no auth, no faults, not logged).

* ``POST /_sandbox/reset``: forget items, API key, S07 failures, request log and faults.
* ``POST /_sandbox/api_key`` ``{"key": "k"}``: require exactly this key (``null``: any).
* ``POST /_sandbox/<collection>``: JSON list (or one object) of items to add or replace by id;
  collections are ``shops``, ``orders``, ``service_orders``, ``service_debits``, ``invoices``.
  Answers ``{"count": N, "ids": [...]}``.
* ``PATCH /_sandbox/<collection>/<id>``: shallow-merge fields into one item (404 if unknown).
* ``POST /_sandbox/additional_fields``: JSON list replacing the custom fields AF01 answers
  (see :mod:`.additional_fields`; reset restores ``stripe-url`` and ``stripe-ignored``).
* ``POST /_sandbox/s07_failures`` ``{"shop_ids": [...]}``: S07 answers ``shop_error`` for them.
* ``GET /_sandbox/requests?path=&method=`` / ``DELETE /_sandbox/requests``: the API request
  log ``[{method, path, query, body, status, at, fault}]`` / clear it.
* ``GET /_sandbox/state``: every collection as currently stored.
* ``GET|POST|DELETE /_sandbox/faults``: fault settings (see :mod:`.faults`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from .common import (
    ApiError,
    current_faults,
    current_store,
    json_body,
    json_response,
)
from .state import COLLECTIONS, id_key

bp = Blueprint("mirakl_sandbox_admin", __name__, url_prefix="/_sandbox")


def _collection(name: str) -> str:
    if name not in COLLECTIONS:
        raise ApiError(404, f"Unknown collection {name}")
    return name


@bp.post("/reset")
def reset() -> Any:
    """Back to an empty sandbox."""
    current_store().reset()
    current_faults().clear()
    return json_response({"reset": True})


@bp.post("/api_key")
def set_api_key() -> Any:
    """Require exactly ``key`` in ``Authorization`` (``null``/empty: accept any non-empty)."""
    body = json_body()
    if not isinstance(body, dict) or (
        body.get("key") is not None and not isinstance(body.get("key"), str)
    ):
        raise ApiError(400, 'Body must be {"key": "<api key>"}')
    store = current_store()
    with store.lock:
        store.api_key = body.get("key") or None
    return json_response({"api_key": store.api_key})


@bp.post("/<name>")
def add_items(name: str) -> Any:
    """Add or replace items of a collection; returns their keys."""
    collection = _collection(name)
    body = json_body()
    items = [body] if isinstance(body, dict) else body
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ApiError(400, "Body must be a JSON list of objects")
    keys = current_store().upsert(collection, items)
    return json_response({"count": len(keys), "ids": keys})


@bp.patch("/<name>/<item_id>")
def patch_item(name: str, item_id: str) -> Any:
    """Shallow-merge the JSON object body into one stored item."""
    collection = _collection(name)
    fields = json_body()
    if not isinstance(fields, dict):
        raise ApiError(400, "Body must be a JSON object")
    item = current_store().patch(collection, item_id, fields)
    if item is None:
        raise ApiError(404, f"{collection} item {item_id} not found")
    return json_response(item)


@bp.post("/s07_failures")
def set_s07_failures() -> Any:
    """S07 answers a per-shop ``shop_error`` for these shop ids (replaces the previous list)."""
    body = json_body()
    shop_ids = body.get("shop_ids") if isinstance(body, dict) else None
    if not isinstance(shop_ids, list):
        raise ApiError(400, 'Body must be {"shop_ids": [...]}')
    store = current_store()
    with store.lock:
        store.s07_failures = {key for key in map(id_key, shop_ids) if key is not None}
        return json_response({"shop_ids": sorted(store.s07_failures)})


@bp.get("/requests")
def list_requests() -> Any:
    """Logged API requests, oldest first; optional exact ``path`` and ``method`` filters."""
    store = current_store()
    return json_response(
        store.logged_requests(request.args.get("path"), request.args.get("method"))
    )


@bp.delete("/requests")
def clear_requests() -> Any:
    """Empty the request log."""
    current_store().clear_requests()
    return json_response({"cleared": True})


@bp.get("/state")
def state() -> Any:
    """Every collection as currently stored (with S07/PA01/PA02/SPA02 effects)."""
    return json_response(current_store().snapshot())


@bp.get("/faults")
def get_faults() -> Any:
    """Current fault settings."""
    return json_response(current_faults().snapshot())


@bp.post("/faults")
def set_faults() -> Any:
    """Replace the fault settings (see :mod:`sandbox.mirakl.faults`)."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "Body must be a JSON object")
    try:
        return json_response(current_faults().configure(body))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc


@bp.delete("/faults")
def clear_faults() -> Any:
    """Remove every fault."""
    current_faults().clear()
    return json_response(current_faults().snapshot())
