"""The sandbox control API (not Stripe): JSON endpoints under ``/_sandbox/``, no auth.

See :class:`sandbox.stripe.control.StripeControl` for the client side.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from . import delivery, faults, idempotency, requestlog
from .accounts import Account, configure_platform, get_account, reset_platform
from .localstripe_ext import stored
from .payments import sandbox_create_charge, sandbox_create_payment_intent
from .payouts import get_payout
from .state import STATE, reset_all
from .util import PLATFORM_ACCOUNT_ID, StripeError, deep_merge, json_response, parse_bool

OBJECT_KINDS = {
    "accounts": "account",
    "transfers": "transfer",
    "reversals": "transfer_reversal",
    "payouts": "payout",
    "refunds": "refund",
    "charges": "charge",
    "payment_intents": "payment_intent",
    "webhook_endpoints": "webhook_endpoint",
}
ACCOUNT_FLAGS = ("charges_enabled", "payouts_enabled", "details_submitted")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise StripeError(400, "The control API expects a JSON body.") from None
    if not isinstance(data, dict):
        raise StripeError(400, "The control API expects a JSON object.")
    return data


def _account_key(value: str) -> str:
    if value in ("platform", PLATFORM_ACCOUNT_ID):
        return PLATFORM_ACCOUNT_ID
    return get_account(value).id


async def reset(request: web.Request) -> web.Response:
    """``POST /_sandbox/reset``: forget all objects, balances, keys, journal, faults, hooks."""
    reset_all()
    idempotency.reset()
    requestlog.clear()
    faults.clear()
    delivery.reset()
    reset_platform()
    return json_response({"reset": True})


async def set_platform(request: web.Request) -> web.Response:
    """``POST /_sandbox/platform`` ``{connect?, rejected_keys?, account?}``: see
    :data:`accounts.PLATFORM_SETTINGS`."""
    return json_response(configure_platform(await _body(request)))


async def create_charge(request: web.Request) -> web.Response:
    """``POST /_sandbox/charges``: see :func:`payments.sandbox_create_charge`."""
    return json_response(sandbox_create_charge(await _body(request)))


async def create_payment_intent(request: web.Request) -> web.Response:
    """``POST /_sandbox/payment_intents``: see :func:`payments.sandbox_create_payment_intent`."""
    return json_response(sandbox_create_payment_intent(await _body(request)))


async def set_account(request: web.Request) -> web.Response:
    """``POST /_sandbox/accounts/{id}``: set flags, ``type``, ``capabilities``,
    ``requirements`` (merged) or ``complete_onboarding: true``; emits ``account.updated``."""
    data = await _body(request)
    allowed = {*ACCOUNT_FLAGS, "requirements", "type", "capabilities", "complete_onboarding"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise StripeError(400, f"Unknown field(s): {', '.join(unknown)}")
    account: Account = get_account(request.match_info["id"])
    if parse_bool(data.get("complete_onboarding", False), "complete_onboarding"):
        account._complete_onboarding()
    for flag in ACCOUNT_FLAGS:
        if flag in data:
            setattr(account, flag, parse_bool(data[flag], flag))
    if "type" in data:
        if data["type"] not in ("custom", "express", "standard"):
            raise StripeError(400, "type must be custom, express or standard", param="type")
        account.type = data["type"]
    if isinstance(data.get("requirements"), dict):
        deep_merge(account.requirements, data["requirements"])
    if isinstance(data.get("capabilities"), dict):
        account.capabilities.update(data["capabilities"])
    exported = account._export()
    delivery.emit("account.updated", exported, account=account.id)
    return json_response(exported)


async def set_balance(request: web.Request) -> web.Response:
    """``POST /_sandbox/balance/{acct|platform}`` ``{currency, available, pending?}``."""
    data = await _body(request)
    account = _account_key(request.match_info["account"])
    currency = str(data.get("currency", "eur")).lower()
    try:
        available = int(data["available"])
        pending = int(data["pending"]) if "pending" in data else None
    except (KeyError, TypeError, ValueError):
        raise StripeError(400, "available (integer) is required", param="available") from None
    STATE.set_balance(account, currency, available, pending)
    return json_response(STATE.balance_json(account))


async def get_balance(request: web.Request) -> web.Response:
    """``GET /_sandbox/balance/{acct|platform}``."""
    return json_response(STATE.balance_json(_account_key(request.match_info["account"])))


async def fail_payout(request: web.Request) -> web.Response:
    """``POST /_sandbox/payouts/{id}/fail`` ``{failure_code, failure_message}`` -> event."""
    data = await _body(request)
    payout = get_payout(request.match_info["id"], "*")
    event = payout._fail(
        data.get("failure_code") or "account_closed",
        data.get("failure_message") or "The bank account has been closed.",
    )
    return json_response(event)


async def pay_payout(request: web.Request) -> web.Response:
    """``POST /_sandbox/payouts/{id}/paid`` -> the ``payout.paid`` event."""
    return json_response(get_payout(request.match_info["id"], "*")._mark_paid())


async def list_requests(request: web.Request) -> web.Response:
    """``GET /_sandbox/requests[?path_prefix=&method=]``."""
    query = request.query
    return json_response(requestlog.matching(query.get("path_prefix"), query.get("method")))


async def clear_requests(request: web.Request) -> web.Response:
    """``DELETE /_sandbox/requests``."""
    requestlog.clear()
    return json_response({"cleared": True})


async def list_objects(request: web.Request) -> web.Response:
    """``GET /_sandbox/objects/{kind}``: every object of a kind, all accounts, oldest first.

    Transfers and payouts carry an extra ``sandbox_scope`` field: the connected account they
    were created on (``null`` for the platform).
    """
    kind = request.match_info["kind"]
    if kind not in OBJECT_KINDS:
        raise StripeError(404, f"Unknown kind {kind!r}; one of {', '.join(OBJECT_KINDS)}")
    result = []
    for obj in stored(OBJECT_KINDS[kind]):
        data = obj._export()
        if hasattr(obj, "_export_with_secret"):  # a sandbox may show webhook secrets
            data = obj._export_with_secret()
        if hasattr(obj, "_scope"):
            data["sandbox_scope"] = obj._scope
        result.append(data)
    return json_response(result)


async def set_faults(request: web.Request) -> web.Response:
    """``POST /_sandbox/faults``: see :mod:`sandbox.stripe.faults`."""
    return json_response(faults.configure(await _body(request)).as_json())


async def get_faults(request: web.Request) -> web.Response:
    """``GET /_sandbox/faults``."""
    return json_response(faults.CONFIG.as_json())


async def clear_faults(request: web.Request) -> web.Response:
    """``DELETE /_sandbox/faults``."""
    faults.clear()
    return json_response(faults.CONFIG.as_json())


async def list_events(request: web.Request) -> web.Response:
    """``GET /_sandbox/events[?type=]``: events emitted by the sandbox, oldest first."""
    wanted = request.query.get("type")
    return json_response([e for e in STATE.events if wanted is None or e["type"] == wanted])


async def add_webhook(request: web.Request) -> web.Response:
    """``POST /_sandbox/webhooks`` ``{url, secret, types?, connect?}``."""
    data = await _body(request)
    if not str(data.get("url", "")).startswith("http") or not data.get("secret"):
        raise StripeError(400, "url (http...) and secret are required")
    delivery.ENDPOINTS.append(
        delivery.Endpoint(
            url=data["url"],
            secret=data["secret"],
            types=list(data.get("types") or []),
            connect=parse_bool(data.get("connect", True), "connect"),
        )
    )
    return json_response(delivery.endpoints_json())


async def get_webhooks(request: web.Request) -> web.Response:
    """``GET /_sandbox/webhooks``: endpoints and delivery attempts."""
    return json_response(delivery.endpoints_json())


async def clear_webhooks(request: web.Request) -> web.Response:
    """``DELETE /_sandbox/webhooks``."""
    delivery.reset()
    return json_response(delivery.endpoints_json())


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/_sandbox/reset", reset),
    ("POST", "/_sandbox/charges", create_charge),
    ("POST", "/_sandbox/payment_intents", create_payment_intent),
    ("POST", "/_sandbox/accounts/{id}", set_account),
    ("POST", "/_sandbox/platform", set_platform),
    ("POST", "/_sandbox/balance/{account}", set_balance),
    ("GET", "/_sandbox/balance/{account}", get_balance),
    ("POST", "/_sandbox/payouts/{id}/fail", fail_payout),
    ("POST", "/_sandbox/payouts/{id}/paid", pay_payout),
    ("GET", "/_sandbox/requests", list_requests),
    ("DELETE", "/_sandbox/requests", clear_requests),
    ("GET", "/_sandbox/objects/{kind}", list_objects),
    ("POST", "/_sandbox/faults", set_faults),
    ("GET", "/_sandbox/faults", get_faults),
    ("DELETE", "/_sandbox/faults", clear_faults),
    ("GET", "/_sandbox/events", list_events),
    ("POST", "/_sandbox/webhooks", add_webhook),
    ("GET", "/_sandbox/webhooks", get_webhooks),
    ("DELETE", "/_sandbox/webhooks", clear_webhooks),
]
