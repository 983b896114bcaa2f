"""What an operator does by hand in the Stripe dashboard, as control endpoints (drift on purpose).

Reconciliation tests need Stripe objects the connector did not make and objects that vanish:

* ``POST /_sandbox/dashboard/transfers/{id}/reversals`` ``{amount?}``: reverse a transfer
  (no metadata, like the dashboard's "Reverse transfer");
* ``POST /_sandbox/dashboard/refunds`` ``{charge, amount?}``: refund a charge (no metadata);
* ``POST /_sandbox/dashboard/payouts`` ``{account, amount, currency?, metadata?}``: a payout
  created by hand on a connected account (its balance is debited, no check);
* ``DELETE /_sandbox/objects/{kind}/{id}``: forget an object (a row whose Stripe object is gone);
* ``POST /_sandbox/objects/{kind}/{id}`` ``{amount?, currency?, status?, metadata?}``: edit the
  facts of an object (an amount that no longer matches ours).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe.resources import Refund, store

from .control_api import OBJECT_KINDS, _body
from .payouts import ConnectPayout
from .state import STATE
from .transfers import TransferReversal, get_transfer
from .util import StripeError, json_response, parse_currency, parse_int, scope_key

EDITABLE = ("amount", "currency", "status", "metadata")


def _stored_object(kind: str, object_id: str) -> Any:
    if kind not in OBJECT_KINDS:
        raise StripeError(404, f"Unknown kind {kind!r}; one of {', '.join(OBJECT_KINDS)}")
    found = store.get(f"{OBJECT_KINDS[kind]}:{object_id}")
    if found is None:
        raise StripeError(404, f"No such {OBJECT_KINDS[kind]}: '{object_id}'")
    return found


async def reverse_transfer(request: web.Request) -> web.Response:
    """Reverse (part of) a transfer of any scope, without metadata."""
    data = await _body(request)
    transfer = store.get(f"transfer:{request.match_info['id']}")
    if transfer is None:
        get_transfer(request, request.match_info["id"])  # raises Stripe's 404
    remaining = transfer.amount - transfer.amount_reversed
    amount = parse_int(data.get("amount", remaining), "amount", minimum=1)
    if amount > remaining:
        raise StripeError(400, f"Amount ({amount}) is greater than the unreversed {remaining}")
    reversal = TransferReversal(transfer, amount, {}, "Reversed in the dashboard")
    transfer.amount_reversed += amount
    transfer.reversed = transfer.amount_reversed >= transfer.amount
    STATE.adjust(transfer.destination, transfer.currency, -amount)
    STATE.adjust(scope_key(transfer._scope), transfer.currency, amount)
    return json_response(reversal._export())


async def refund_charge(request: web.Request) -> web.Response:
    """Refund a charge without metadata, as the dashboard's "Refund payment"."""
    data = await _body(request)
    params: dict[str, Any] = {"charge": data.get("charge")}
    if "amount" in data:
        params["amount"] = data["amount"]
    refund = Refund(**params)
    return json_response(refund._export())


async def create_payout(request: web.Request) -> web.Response:
    """A payout made by hand on a connected account (``metadata`` optional)."""
    data = await _body(request)
    account = str(data.get("account") or "")
    if not account.startswith("acct_"):
        raise StripeError(400, "account (acct_...) is required", param="account")
    amount = parse_int(data.get("amount"), "amount", minimum=1)
    currency = parse_currency(data.get("currency", "eur"))
    metadata = {str(k): str(v) for k, v in (data.get("metadata") or {}).items()}
    payout = ConnectPayout(account, amount, currency, metadata, None, "standard", "card", None)
    STATE.adjust(scope_key(account), currency, -amount)
    return json_response(payout._export())


async def delete_object(request: web.Request) -> web.Response:
    """Forget one object: the next retrieve answers 404 and lists no longer show it."""
    kind, object_id = request.match_info["kind"], request.match_info["id"]
    _stored_object(kind, object_id)
    del store[f"{OBJECT_KINDS[kind]}:{object_id}"]
    return json_response({"id": object_id, "deleted": True})


async def edit_object(request: web.Request) -> web.Response:
    """Overwrite ``amount``, ``currency``, ``status`` or ``metadata`` of one object."""
    data = await _body(request)
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise StripeError(400, f"Unknown field(s): {', '.join(unknown)}")
    found = _stored_object(request.match_info["kind"], request.match_info["id"])
    if "amount" in data:
        found.amount = parse_int(data["amount"], "amount", minimum=0)
    if "currency" in data:
        found.currency = parse_currency(data["currency"])
    if "status" in data:
        found.status = str(data["status"])
    if "metadata" in data:
        found.metadata = {str(k): str(v) for k, v in (data["metadata"] or {}).items()}
    return json_response(found._export())


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/_sandbox/dashboard/transfers/{id}/reversals", reverse_transfer),
    ("POST", "/_sandbox/dashboard/refunds", refund_charge),
    ("POST", "/_sandbox/dashboard/payouts", create_payout),
    ("DELETE", "/_sandbox/objects/{kind}/{id}", delete_object),
    ("POST", "/_sandbox/objects/{kind}/{id}", edit_object),
]
