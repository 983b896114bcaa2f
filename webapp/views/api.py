"""Operator API under ``/api`` (``X-AUTH-TOKEN: $OPERATOR_PASSWORD``), as the reference's.

Records are answered with the reference's camelCase names; lists are paged like API
Platform's defaults (30 per page, ``?page=``), ordered by id.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from webapp.errors import MiraklError, StripeOutcomeUnknown
from webapp.extensions import db
from webapp.models import AccountMapping, StripePayout, StripeRefund, StripeTransfer
from webapp.services.onboarding import mappings as manual_mappings
from webapp.services.onboarding import rules as onboarding_rules

bp = Blueprint("api", __name__, url_prefix="/api")

PAGE_SIZE = 30  # records per page, API Platform's default
MAX_PAGE_SIZE = 1000
MAX_ROW_ID = 2**31 - 1  # ids are Integer columns: a bigger id matches no row
MAX_PAGE = 2**31 - 1  # beyond, the offset would not fit PostgreSQL's bigint


@bp.before_request
def require_operator_token():
    """401 without the header, 403 with a wrong value (constant-time comparison).

    A CORS preflight (OPTIONS) carries no token: it is answered by ``views.cors``."""
    if request.method == "OPTIONS":
        return None
    token = request.headers.get("X-AUTH-TOKEN")
    if token is None:
        return jsonify(message="Authentication Required"), 401
    expected = current_app.config["OPERATOR_PASSWORD"].reveal()
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return jsonify(message="Invalid credentials."), 403
    return None


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    """Every error under ``/api`` answers JSON ``{"message": ...}``, never an HTML page.

    Registered on the app, not the blueprint: a path that matches no route
    (``/api/transfers/abc``) or a wrong method belongs to no blueprint, yet is the API's.
    Other paths keep Flask's own answer.
    """
    if not is_api_path(request.path):
        return error
    return jsonify(message=error.description or error.name), error.code


def is_api_path(path: str) -> bool:
    """Whether ``path`` is under ``/api`` (the operator API and the public endpoints)."""
    return path == "/api" or path.startswith("/api/")


def _json_object() -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one.

    A body nested thousands deep makes the parser raise RecursionError, not ValueError:
    it is as invalid as any other bad JSON (400, not 500).
    """
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return None
    return body if isinstance(body, dict) else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def transfer_json(row: StripeTransfer) -> dict[str, Any]:
    mapping = row.account_mapping
    return {
        "id": row.id,
        "miraklId": row.mirakl_id,
        "type": row.type,
        "transferId": row.transfer_id,
        "transactionId": row.transaction_id,
        "amount": row.amount,
        "currency": row.currency,
        "status": row.status,
        "statusReason": row.status_reason,
        "miraklShopId": mapping.mirakl_shop_id if mapping else row.mirakl_shop_id,
        "stripeAccountId": mapping.stripe_account_id if mapping else None,
        "transferGroup": row.transfer_group,
        "attempt": row.attempt,
        "miraklCreatedDate": _iso(row.mirakl_created_date),
        "creationDatetime": _iso(row.creation_datetime),
        "modificationDatetime": _iso(row.modification_datetime),
    }


def refund_json(row: StripeRefund) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "amount": row.amount,
        "currency": row.currency,
        "miraklRefundId": row.mirakl_refund_id,
        "miraklCommercialOrderId": row.mirakl_commercial_order_id,
        "miraklOrderId": row.mirakl_order_id,
        "miraklOrderLineId": row.mirakl_order_line_id,
        "transactionId": row.transaction_id,
        "stripeRefundId": row.stripe_refund_id,
        "status": row.status,
        "statusReason": row.status_reason,
        "attempt": row.attempt,
        "miraklValidationTime": _iso(row.mirakl_validation_time),
        "creationDatetime": _iso(row.creation_datetime),
        "modificationDatetime": _iso(row.modification_datetime),
    }


def payout_json(row: StripePayout) -> dict[str, Any]:
    mapping = row.account_mapping
    return {
        "id": row.id,
        "amount": row.amount,
        "currency": row.currency,
        "miraklInvoiceId": row.mirakl_invoice_id,
        "payoutId": row.payout_id,
        "status": row.status,
        "statusReason": row.status_reason,
        "miraklShopId": mapping.mirakl_shop_id if mapping else row.mirakl_shop_id,
        "stripeAccountId": mapping.stripe_account_id if mapping else None,
        "attempt": row.attempt,
        "miraklCreatedDate": _iso(row.mirakl_created_date),
        "creationDatetime": _iso(row.creation_datetime),
        "modificationDatetime": _iso(row.modification_datetime),
    }


def mapping_json(row: AccountMapping) -> dict[str, Any]:
    # The onboarding token is a credential for the refresh link: never exposed.
    return {
        "id": row.id,
        "miraklShopId": row.mirakl_shop_id,
        "stripeAccountId": row.stripe_account_id,
        "payoutEnabled": row.payout_enabled,
        "payinEnabled": row.payin_enabled,
        "disabledReason": row.disabled_reason,
        "ignored": row.ignored,
        "creationDatetime": _iso(row.creation_datetime),
        "modificationDatetime": _iso(row.modification_datetime),
    }


def _page() -> tuple[int, int]:
    try:
        page = min(MAX_PAGE, max(1, int(request.args.get("page", 1))))
        size = min(MAX_PAGE_SIZE, max(1, int(request.args.get("itemsPerPage", PAGE_SIZE))))
    except ValueError:
        abort(400, "page and itemsPerPage must be whole numbers")
    return page, size


def _list(model: type, serialize: Callable[[Any], dict], *filters: Any):
    page, size = _page()
    rows = db.session.execute(
        select(model).where(*filters).order_by(model.id).limit(size).offset((page - 1) * size)
    ).scalars()
    return jsonify([serialize(row) for row in rows])


def _one(model: type, serialize: Callable[[Any], dict], row_id: int, what: str):
    row = db.session.get(model, row_id) if row_id <= MAX_ROW_ID else None
    if row is None:
        abort(404, f"{what} {row_id} doesn't exist.")
    return jsonify(serialize(row))


@bp.get("/transfers")
def list_transfers():
    mirakl_id = request.args.get("miraklId")
    if mirakl_id is not None and "\x00" in mirakl_id:
        return jsonify([])  # no Mirakl id holds NUL, and PostgreSQL refuses to compare one
    filters = [StripeTransfer.mirakl_id == mirakl_id] if mirakl_id is not None else []
    return _list(StripeTransfer, transfer_json, *filters)


@bp.get("/transfers/<int:row_id>")
def get_transfer(row_id: int):
    return _one(StripeTransfer, transfer_json, row_id, "Transfer")


@bp.get("/refunds")
def list_refunds():
    return _list(StripeRefund, refund_json)


@bp.get("/refunds/<int:row_id>")
def get_refund(row_id: int):
    return _one(StripeRefund, refund_json, row_id, "Refund")


@bp.get("/payouts")
def list_payouts():
    return _list(StripePayout, payout_json)


@bp.get("/payouts/<int:row_id>")
def get_payout(row_id: int):
    return _one(StripePayout, payout_json, row_id, "Payout")


@bp.get("/mappings")
def list_mappings():
    return _list(AccountMapping, mapping_json)


@bp.get("/mappings/<int:row_id>")
def get_mapping(row_id: int):
    return _one(AccountMapping, mapping_json, row_id, "Mapping")


@bp.post("/mappings")
def create_mapping():
    """Map a shop to an existing Stripe account: 201, or 400/409 with the reference's text."""
    body = _json_object()
    if body is None:
        return jsonify(message="Invalid JSON format"), 400
    try:
        mapping = manual_mappings.create_manual_mapping(
            body.get("miraklShopId"), body.get("stripeUserId")
        )
    except onboarding_rules.MappingRejected as exc:
        return jsonify(message=exc.message), exc.http_status
    except (MiraklError, StripeOutcomeUnknown) as exc:
        return jsonify(message=f"Could not check the mapping, try again: {exc}"), 503
    return jsonify(message="Mirakl - Stripe mapping created", **mapping_json(mapping)), 201


@bp.delete("/mappings/<int:row_id>")
def delete_mapping(row_id: int):
    if row_id > MAX_ROW_ID or not manual_mappings.delete_mapping(row_id):
        abort(404, f"Mapping {row_id} doesn't exist.")
    return "", 204
