"""Payouts (``/v1/payouts*``) and balances (``GET /v1/balance``), scoped by ``Stripe-Account``.

These replace localstripe's ``Payout`` routes (which ignore accounts and balances).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from localstripe.resources import StripeObject, store

from .accounts import get_account
from .delivery import emit
from .localstripe_ext import stored
from .state import STATE
from .util import (
    StripeError,
    check_params,
    created_filter,
    json_response,
    new_id,
    paginate,
    parse_currency,
    parse_int,
    parse_metadata,
    read_params,
    request_scope,
    require,
    scope_key,
)

PAYOUT_STATUSES = ("canceled", "failed", "in_transit", "paid", "pending")
TWO_DAYS = 2 * 24 * 3600


class ConnectPayout(StripeObject):
    """A payout ``po_...`` of the account it was created on (``_scope``; None: platform)."""

    object = "payout"
    _id_prefix = "po_"

    def __init__(
        self,
        scope: str | None,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        description: str | None,
        method: str,
        source_type: str,
        statement_descriptor: str | None,
    ) -> None:
        super().__init__(id=new_id("po"))
        self._scope = scope
        self.amount = amount
        self.arrival_date = self.created + TWO_DAYS
        self.automatic = False
        self.balance_transaction = new_id("txn")
        self.currency = currency
        self.description = description
        self.destination = new_id("ba")
        self.failure_balance_transaction: str | None = None
        self.failure_code: str | None = None
        self.failure_message: str | None = None
        self.metadata = metadata
        self.method = method
        self.original_payout = None
        self.reversed_by = None
        self.source_type = source_type
        self.statement_descriptor = statement_descriptor
        self.status = "pending"
        self.type = "bank_account"

    def _fail(self, code: str, message: str) -> dict[str, Any]:
        """Mark failed, give the funds back and return the ``payout.failed`` event."""
        if self.status not in ("pending", "in_transit", "paid"):
            raise StripeError(400, f"Payout {self.id} is {self.status} and cannot fail.")
        self.status = "failed"
        self.failure_code = code
        self.failure_message = message
        self.failure_balance_transaction = new_id("txn")
        STATE.adjust(scope_key(self._scope), self.currency, self.amount)
        return emit("payout.failed", self._export(), account=self._scope)

    def _mark_paid(self) -> dict[str, Any]:
        """Mark paid and return the ``payout.paid`` event."""
        if self.status not in ("pending", "in_transit"):
            raise StripeError(400, f"Payout {self.id} is {self.status} and cannot be paid.")
        self.status = "paid"
        self.arrival_date = int(time.time())
        return emit("payout.paid", self._export(), account=self._scope)


def get_payout(payout_id: str, scope: str | None) -> ConnectPayout:
    """The payout in ``scope`` or 404; ``scope="*"`` matches any account (control API)."""
    payout = store.get(f"payout:{payout_id}")
    if payout is None or (scope != "*" and payout._scope != scope):
        raise StripeError(
            404, f"No such payout: '{payout_id}'", code="resource_missing", param="id"
        )
    return payout


# --------------------------------------------------------------------------- handlers


async def create_payout(request: web.Request) -> web.Response:
    """``POST /v1/payouts``: needs ``payouts_enabled`` and enough available balance."""
    params = await read_params(request)
    check_params(
        params,
        (
            "amount",
            "currency",
            "description",
            "destination",
            "metadata",
            "method",
            "source_type",
            "statement_descriptor",
        ),
    )
    amount = parse_int(require(params, "amount"), "amount", minimum=1)
    currency = parse_currency(require(params, "currency"))
    method = params.get("method") or "standard"
    if method not in ("standard", "instant"):
        raise StripeError(
            400,
            "Invalid method: must be one of standard or instant",
            code="parameter_invalid",
            param="method",
        )
    source_type = params.get("source_type") or "card"
    if source_type not in ("bank_account", "card", "fpx"):
        raise StripeError(
            400,
            "Invalid source_type: must be one of bank_account, card, or fpx",
            code="parameter_invalid",
            param="source_type",
        )
    metadata = parse_metadata(params.get("metadata"))
    scope = request_scope(request)
    if scope is not None:
        account = get_account(scope, "account")
        if not account.payouts_enabled:
            raise StripeError(
                400,
                f"Payouts are not enabled for account {scope} (payouts_enabled is false): the "
                "account must complete its onboarding requirements before it can be paid out.",
                code="payouts_not_allowed",
            )
    if STATE.available(scope_key(scope), currency) < amount:
        raise StripeError(
            400,
            "You have insufficient funds in your Stripe account. One likely reason you have "
            "insufficient funds is that your funds are automatically being paid out; try "
            "enabling manual payouts by going to https://dashboard.stripe.com/account/payouts.",
            code="balance_insufficient",
            param="amount",
        )
    payout = ConnectPayout(
        scope,
        amount,
        currency,
        metadata,
        params.get("description") or None,
        method,
        source_type,
        params.get("statement_descriptor") or None,
    )
    STATE.adjust(scope_key(scope), currency, -amount)
    return json_response(payout._export(expand=params.get("expand")))


async def retrieve_payout(request: web.Request) -> web.Response:
    """``GET /v1/payouts/{id}`` in the request's scope."""
    params = await read_params(request)
    payout = get_payout(request.match_info["id"], request_scope(request))
    return json_response(payout._export(expand=params.get("expand")))


async def update_payout(request: web.Request) -> web.Response:
    """``POST /v1/payouts/{id}``: ``metadata``."""
    params = await read_params(request)
    check_params(params, ("metadata",))
    payout = get_payout(request.match_info["id"], request_scope(request))
    payout.metadata = parse_metadata(params.get("metadata"), payout.metadata)
    return json_response(payout._export(expand=params.get("expand")))


async def cancel_payout(request: web.Request) -> web.Response:
    """``POST /v1/payouts/{id}/cancel``: pending payouts only; the funds come back."""
    params = await read_params(request)
    check_params(params, ())
    payout = get_payout(request.match_info["id"], request_scope(request))
    if payout.status != "pending":
        raise StripeError(
            400,
            f"Payouts can only be canceled while they are pending; {payout.id} is {payout.status}.",
        )
    payout.status = "canceled"
    STATE.adjust(scope_key(payout._scope), payout.currency, payout.amount)
    return json_response(payout._export(expand=params.get("expand")))


async def list_payouts(request: web.Request) -> web.Response:
    """``GET /v1/payouts``: the request scope's payouts, newest first."""
    params = await read_params(request)
    check_params(
        params,
        (
            "arrival_date",
            "created",
            "destination",
            "ending_before",
            "limit",
            "starting_after",
            "status",
        ),
    )
    status = params.get("status")
    if status is not None and status not in PAYOUT_STATUSES:
        raise StripeError(
            400, f"Invalid status: {status}", code="parameter_invalid", param="status"
        )
    scope = request_scope(request)
    is_created = created_filter(params.get("created"))
    is_arrival = created_filter(params.get("arrival_date"), "arrival_date")
    items = [
        p
        for p in reversed(stored("payout"))
        if p._scope == scope
        and (status is None or p.status == status)
        and is_created(p.created)
        and is_arrival(p.arrival_date)
    ]
    return json_response(paginate(items, params, "/v1/payouts"))


async def retrieve_balance(request: web.Request) -> web.Response:
    """``GET /v1/balance`` of the platform or of the ``Stripe-Account``."""
    return json_response(STATE.balance_json(scope_key(request_scope(request))))


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/payouts", create_payout),
    ("GET", "/v1/payouts", list_payouts),
    ("GET", "/v1/payouts/{id}", retrieve_payout),
    ("POST", "/v1/payouts/{id}", update_payout),
    ("POST", "/v1/payouts/{id}/cancel", cancel_payout),
    ("GET", "/v1/balance", retrieve_balance),
]
