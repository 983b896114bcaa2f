"""Pure readings of a charge or PaymentIntent (plain dicts from the gateway or a webhook): what
state the payment is in and what it captured. Validation and the charge webhooks use them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp.models import PaymentMappingStatus

# What a payment can be, seen from Stripe (``payment_state``).
CAPTURABLE = "capturable"  # authorised, waiting for capture
CAPTURED = "captured"
CANCELED = "canceled"  # authorisation released, or fully refunded before capture
FAILED = "failed"
NOT_READY = "not_ready"  # still processing or waiting for the customer


INTENT_STATES = {
    "requires_capture": CAPTURABLE,
    "succeeded": CAPTURED,
    "canceled": CANCELED,
}


def evaluate_charge_status(charge: Mapping[str, Any]) -> PaymentMappingStatus:
    """The mapping status a charge implies (reference §3.1, plus released authorisations).

    1. ``status`` failed → failed.
    2. captured → captured.
    3. refunded in full without capture (authorisation released) → canceled (ours: the
       reference kept it ``to_capture`` and tried to capture it forever).
    4. otherwise → to_capture.
    """
    if charge.get("status") == "failed":
        return PaymentMappingStatus.FAILED
    if charge.get("captured"):
        return PaymentMappingStatus.CAPTURED
    if charge.get("refunded"):
        return PaymentMappingStatus.CANCELED
    return PaymentMappingStatus.TO_CAPTURE


def payment_state(
    charge: Mapping[str, Any] | None, intent: Mapping[str, Any] | None
) -> tuple[str, str]:
    """``(state, Stripe status)`` of a payment from its charge and/or PaymentIntent.

    1. the charge failed → failed.
    2. a PaymentIntent decides: requires_capture → capturable, succeeded → captured,
       canceled → canceled, anything else → not ready.
    3. a charge alone: refunded → canceled, captured → captured, succeeded → capturable,
       anything else (pending) → not ready.
    """
    if charge is not None and charge.get("status") == "failed":
        return FAILED, "failed"
    if intent is not None:
        status = str(intent.get("status") or "unknown")
        return INTENT_STATES.get(status, NOT_READY), status
    assert charge is not None
    status = str(charge.get("status") or "unknown")
    if charge.get("refunded"):
        return CANCELED, "refunded"
    if charge.get("captured"):
        return CAPTURED, status
    return (CAPTURABLE if status == "succeeded" else NOT_READY), status


def captured_amount_of(charge: Mapping[str, Any] | None, intent: Mapping[str, Any] | None) -> int:
    """What Stripe actually captured on this payment (minor units)."""
    if intent is not None and intent.get("amount_received") is not None:
        return int(intent["amount_received"])
    if charge is not None:
        captured = charge.get("amount_captured")
        return int(captured if captured is not None else charge.get("amount") or 0)
    return 0
