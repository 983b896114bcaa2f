"""Charge / PaymentIntent capture and cancel with Stripe's error codes, and quick creation of
customer payments for the control API (no card flow needed).

A payment created through the control API emits the events Stripe sends for it
(``charge.succeeded``, ``payment_intent.succeeded``, ``payment_intent.amount_capturable_updated``
…, see :data:`CHARGE_EVENTS` and :data:`INTENT_EVENTS`) to the registered webhook endpoints.

Everything else about charges, payment intents and refunds is localstripe's (patched in
:mod:`sandbox.stripe.localstripe_ext`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe.resources import Charge, PaymentIntent, PaymentMethod, store

from . import delivery
from .localstripe_ext import cancel_payment_intent, capture_charge, get_object
from .util import (
    StripeError,
    check_params,
    json_response,
    new_id,
    parse_bool,
    parse_currency,
    parse_int,
    parse_metadata,
    read_params,
)

CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
CHARGE_STATUSES = ("succeeded", "failed", "pending")
INTENT_STATUSES = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
)

CHARGE_EVENTS = {
    "succeeded": "charge.succeeded",
    "failed": "charge.failed",
    "pending": "charge.pending",
}
INTENT_EVENTS = {
    "succeeded": "payment_intent.succeeded",
    "requires_capture": "payment_intent.amount_capturable_updated",
    "processing": "payment_intent.processing",
    "canceled": "payment_intent.canceled",
    "requires_action": "payment_intent.requires_action",
    "requires_payment_method": "payment_intent.payment_failed",
}


def _unexpected_state(intent: PaymentIntent, action: str, allowed: tuple[str, ...]) -> StripeError:
    status = intent.status
    message = (
        f"This PaymentIntent could not be {action} because it has a status of {status}. Only a "
        f"PaymentIntent with one of the following statuses may be {action}: "
        + ", ".join(allowed)
        + "."
    )
    if action == "captured" and status == "succeeded":
        message = f"This PaymentIntent ({intent.id}) has already been captured. " + message
    return StripeError(
        400, message, code="payment_intent_unexpected_state", payment_intent=intent._export()
    )


# --------------------------------------------------------------------------- handlers


async def capture_charge_handler(request: web.Request) -> web.Response:
    """``POST /v1/charges/{id}/capture``."""
    params = await read_params(request)
    check_params(
        params,
        (
            "amount",
            "application_fee_amount",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_data",
            "transfer_group",
        ),
    )
    charge = get_object(Charge, request.match_info["id"])
    if charge.captured and charge.status == "succeeded":
        raise StripeError(
            400,
            f"Charge {charge.id} has already been captured.",
            code="charge_already_captured",
            charge=charge.id,
        )
    if charge.status != "succeeded" or charge.refunded:
        raise StripeError(
            400,
            f"Charge {charge.id} cannot be captured: its status is {charge.status}"
            + (" and it has been refunded." if charge.refunded else "."),
            code="charge_not_capturable" if not charge.refunded else "charge_expired_for_capture",
            charge=charge.id,
        )
    amount = parse_int(params.get("amount", charge.amount), "amount", minimum=1)
    if amount > charge.amount:
        raise StripeError(
            400,
            f"The amount to capture ({amount}) is greater than the charge amount "
            f"({charge.amount}).",
            code="amount_too_large",
            param="amount",
        )
    intent = store.get(f"payment_intent:{charge.payment_intent}")
    if "transfer_group" in params:
        charge.transfer_group = params["transfer_group"] or None
    capture_charge(charge, amount, on_success=intent._on_success if intent else None)
    return json_response(charge._export(expand=params.get("expand")))


async def capture_intent_handler(request: web.Request) -> web.Response:
    """``POST /v1/payment_intents/{id}/capture`` (partial capture releases the rest)."""
    params = await read_params(request)
    check_params(
        params,
        (
            "amount_to_capture",
            "application_fee_amount",
            "final_capture",
            "metadata",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_data",
        ),
    )
    intent = get_object(PaymentIntent, request.match_info["id"])
    if intent.status != "requires_capture":
        raise _unexpected_state(intent, "captured", ("requires_capture",))
    capturable = intent.amount_capturable
    amount = parse_int(params.get("amount_to_capture", capturable), "amount_to_capture", minimum=1)
    if amount > capturable:
        raise StripeError(
            400,
            f"The amount_to_capture ({amount}) must be less than or equal to the "
            f"PaymentIntent's amount_capturable ({capturable}).",
            code="amount_too_large",
            param="amount_to_capture",
        )
    intent.metadata = parse_metadata(params.get("metadata"), intent.metadata)
    capture_charge(intent.latest_charge, amount, on_success=intent._on_success)
    return json_response(intent._export(expand=params.get("expand")))


async def cancel_intent_handler(request: web.Request) -> web.Response:
    """``POST /v1/payment_intents/{id}/cancel``."""
    params = await read_params(request)
    check_params(params, ("cancellation_reason",))
    intent = get_object(PaymentIntent, request.match_info["id"])
    reason = params.get("cancellation_reason") or None
    if reason is not None and reason not in CANCELLATION_REASONS:
        raise StripeError(
            400,
            "Invalid cancellation_reason: must be one of " + ", ".join(CANCELLATION_REASONS),
            code="parameter_invalid",
            param="cancellation_reason",
        )
    if intent.status not in CANCELABLE:
        raise StripeError(
            400,
            f"You cannot cancel this PaymentIntent because it has a status of {intent.status}. "
            "Only a PaymentIntent with one of the following statuses may be canceled: "
            + ", ".join(CANCELABLE)
            + ".",
            code="payment_intent_unexpected_state",
            payment_intent=intent._export(),
        )
    cancel_payment_intent(intent, reason)
    return json_response(intent._export(expand=params.get("expand")))


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/charges/{id}/capture", capture_charge_handler),
    ("POST", "/v1/payment_intents/{id}/capture", capture_intent_handler),
    ("POST", "/v1/payment_intents/{id}/cancel", cancel_intent_handler),
]


# ------------------------------------------------------------------ control helpers


def _test_card() -> PaymentMethod:
    return PaymentMethod(
        type="card",
        card={"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"},
    )


def _rekey_charge(charge: Charge, prefix: str) -> None:
    """Give ``charge`` an id with another prefix (``py_`` charges are Connect payments)."""
    old_id = charge.id
    new_charge_id = new_id(prefix)
    del store[f"charge:{old_id}"]
    charge.id = new_charge_id
    store[f"charge:{new_charge_id}"] = charge
    if charge.balance_transaction:
        store[f"balance_transaction:{charge.balance_transaction}"].source = new_charge_id


def _new_charge(
    amount: int, currency: str, status: str, captured: bool, metadata: dict[str, str]
) -> Charge:
    charge = Charge(
        amount=amount,
        currency=currency,
        source=_test_card().id,
        capture=captured and status == "succeeded",
        metadata=metadata,
    )
    if status == "succeeded":
        charge._initialize_charge()  # succeeded; captured charges get a balance transaction
    elif status == "failed":
        charge.captured = False
        charge._set_auth_failure()
    else:
        charge.status = "pending"
        charge.captured = captured
    return charge


def sandbox_create_charge(data: dict[str, Any]) -> dict[str, Any]:
    """``POST /_sandbox/charges``: a customer payment, optionally owned by a PaymentIntent."""
    _only(
        data,
        (
            "amount",
            "currency",
            "captured",
            "status",
            "metadata",
            "with_payment_intent",
            "payment_intent_metadata",
            "id_prefix",
            "transfer_group",
        ),
    )
    amount = parse_int(data.get("amount"), "amount", minimum=1)
    currency = parse_currency(data.get("currency", "eur"))
    captured = parse_bool(data.get("captured", True), "captured")
    status = data.get("status", "succeeded")
    if status not in CHARGE_STATUSES:
        raise StripeError(
            400, f"status must be one of {', '.join(CHARGE_STATUSES)}", param="status"
        )
    prefix = data.get("id_prefix", "ch")
    if prefix not in ("ch", "py"):
        raise StripeError(400, "id_prefix must be 'ch' or 'py'", param="id_prefix")
    with_intent = parse_bool(data.get("with_payment_intent", False), "with_payment_intent")
    metadata = parse_metadata(data.get("metadata"))
    intent_metadata = parse_metadata(data.get("payment_intent_metadata"))

    charge = _new_charge(amount, currency, status, captured, metadata)
    charge.transfer_group = data.get("transfer_group")
    if prefix != "ch":
        _rekey_charge(charge, prefix)
    if with_intent:
        intent = PaymentIntent(
            amount=amount,
            currency=currency,
            payment_method=charge.payment_method,
            metadata=intent_metadata,
            capture_method="manual",
            transfer_group=data.get("transfer_group"),
        )
        intent.latest_charge = charge
        charge.payment_intent = intent.id
    _emit_payment_events(charge, intent if with_intent else None)
    return charge._export()


def _emit_payment_events(charge: Charge | None, intent: PaymentIntent | None) -> None:
    """The events Stripe sends for a new payment: the charge's first, then the intent's."""
    if charge is not None:
        delivery.emit(CHARGE_EVENTS[charge.status], charge._export())
    if intent is not None and intent.status in INTENT_EVENTS:
        if intent.status == "requires_payment_method" and charge is None:
            return  # a fresh intent never paid: no event
        delivery.emit(INTENT_EVENTS[intent.status], intent._export())


def sandbox_create_payment_intent(data: dict[str, Any]) -> dict[str, Any]:
    """``POST /_sandbox/payment_intents``: a PaymentIntent directly in any status."""
    _only(data, ("amount", "currency", "status", "metadata", "capture_method", "transfer_group"))
    amount = parse_int(data.get("amount"), "amount", minimum=1)
    currency = parse_currency(data.get("currency", "eur"))
    status = data.get("status", "requires_capture")
    if status not in INTENT_STATUSES:
        raise StripeError(
            400, f"status must be one of {', '.join(INTENT_STATUSES)}", param="status"
        )
    capture_method = data.get("capture_method") or (
        "manual" if status == "requires_capture" else "automatic"
    )
    intent = PaymentIntent(
        amount=amount,
        currency=currency,
        payment_method=None if status == "requires_payment_method" else _test_card().id,
        metadata=parse_metadata(data.get("metadata")),
        capture_method=capture_method,
        transfer_group=data.get("transfer_group"),
    )
    if status == "requires_action":
        intent.next_action = {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
    elif status == "canceled":
        intent._canceled = True
        intent.canceled_at = intent.created
    elif status in ("processing", "requires_capture", "succeeded"):
        charge_status = "pending" if status == "processing" else "succeeded"
        charge = _new_charge(amount, currency, charge_status, status == "succeeded", {})
        charge.payment_intent = intent.id
        intent.latest_charge = charge
    _emit_payment_events(getattr(intent, "latest_charge", None), intent)
    return intent._export()


def _only(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise StripeError(400, f"Unknown field(s): {', '.join(unknown)}", param=unknown[0])
