"""Custom fields: AF01 (``GET /api/additional_fields``) and its control endpoint.

The sandbox starts (and resets) with the two shop fields the connector's default
configuration names: ``stripe-url`` (a ``LINK`` the seller may read but not edit) and
``stripe-ignored`` (a ``BOOLEAN`` the seller does not see). Tests replace the whole list with
``POST /_sandbox/additional_fields`` (a JSON list, or ``[]`` for none), e.g. to give a field
the wrong type.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, request

from .common import ApiError, current_store, json_body, json_response, split_csv
from .field_items import ENTITIES, FIELD_TYPES, PERMISSIONS, make_additional_field

bp = Blueprint("mirakl_additional_fields", __name__)


def _check_field(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("code"), str) or not item["code"]:
        raise ApiError(400, "Each field must be an object with a non-empty code")
    field = {**make_additional_field(item["code"], "STRING"), **item}
    if field["type"] not in FIELD_TYPES:
        raise ApiError(400, f"type must be one of {', '.join(FIELD_TYPES)}")
    if field["entity"] not in ENTITIES:
        raise ApiError(400, f"entity must be one of {', '.join(ENTITIES)}")
    if field["shop_permission"] not in PERMISSIONS:
        raise ApiError(400, f"shop_permission must be one of {', '.join(PERMISSIONS)}")
    return field


@bp.get("/api/additional_fields")
def list_additional_fields() -> Any:
    """AF01: every custom field, or those of the ``entities`` given (CSV)."""
    wanted = set(split_csv(request.args.getlist("entities")))
    store = current_store()
    with store.lock:
        fields = [f for f in store.additional_fields if not wanted or f["entity"] in wanted]
        return json_response({"additional_fields": copy.deepcopy(fields)})


@bp.post("/_sandbox/additional_fields")
def set_additional_fields() -> Any:
    """Replace the custom fields AF01 answers."""
    body = json_body()
    if not isinstance(body, list):
        raise ApiError(400, "Body must be a JSON list of fields")
    fields = [_check_field(item) for item in body]
    store = current_store()
    with store.lock:
        store.additional_fields = fields
    return json_response({"additional_fields": fields})
