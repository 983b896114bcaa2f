"""The capture money job (docs/validation.md): ``execute_capture`` and its steps.

Claims a payment mapping whose capture or cancel was decided, captures (the decided amount)
or cancels the payment on Stripe exactly once with the claim's idempotency key, and
reconciles a payment Stripe already captured or canceled instead of failing forever
(reference issue #105). Pure rules live in ``validation/rules.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.extensions import db
from webapp.models import PaymentMapping, PaymentMappingStatus
from webapp.services.clients import get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.ledger.minor_units import format_amount
from webapp.services.stripe.charges import (
    CANCELED,
    CAPTURABLE,
    CAPTURED,
    FAILED,
    captured_amount_of,
    payment_state,
)
from webapp.services.stripe.gateway import StripeGateway
from webapp.services.validation.rules import MONEY_ACTOR

log = logging.getLogger(__name__)


def _load_payment(
    gateway: StripeGateway, payment_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The payment's charge and PaymentIntent as Stripe has them now (either may be None)."""
    if payment_id.startswith("pi_"):
        return None, gateway.retrieve_payment_intent(payment_id)
    if not payment_id.startswith(("ch_", "py_")):
        raise StripeRefused(f"Unsupported payment id {payment_id}: expected pi_, ch_ or py_")
    charge = gateway.retrieve_charge(payment_id)
    intent = charge.get("payment_intent")
    if isinstance(intent, str) and intent:
        intent = gateway.retrieve_payment_intent(intent)
    return charge, intent if isinstance(intent, dict) else None


def _send(
    gateway: StripeGateway,
    row: PaymentMapping,
    charge: dict[str, Any] | None,
    intent: dict[str, Any] | None,
    key: str,
) -> None:
    """The one Stripe write of this attempt: capture or cancel, PaymentIntent or charge."""
    amount = row.captured_amount or 0
    if intent is not None:
        if amount > 0:
            gateway.capture_payment_intent(intent["id"], amount, idempotency_key=key)
        else:
            gateway.cancel_payment_intent(intent["id"], idempotency_key=key)
        return
    assert charge is not None
    if amount > 0:
        gateway.capture_charge(charge["id"], amount, idempotency_key=key)
    else:
        # A charge without PaymentIntent is released by refunding it in full.
        metadata = {"miraklCommercialOrderId": row.mirakl_commercial_order_id}
        gateway.create_refund(charge["id"], None, metadata=metadata, idempotency_key=key)


def _finish(
    row: PaymentMapping, to: PaymentMappingStatus, reason: str | None, **fields: Any
) -> None:
    transitions.transition(
        row, to, reason, actor=MONEY_ACTOR, attempted_at=None, next_attempt_at=None, **fields
    )
    db.session.commit()


def _reconcile(
    row: PaymentMapping,
    state: str,
    stripe_status: str,
    charge: dict[str, Any] | None,
    intent: dict[str, Any] | None,
    is_recheck: bool = False,
) -> bool:
    """Record a final state found in Stripe (captured, canceled, failed); False if not final.

    On a recheck, the state our own lost attempt asked for is a plain success.
    """
    planned = CAPTURED if (row.captured_amount or 0) > 0 else CANCELED
    ours = is_recheck and state == planned
    if state == CAPTURED:
        amount = captured_amount_of(charge, intent)
        note = "" if planned == CAPTURED else "; the connector had decided to cancel it"
        reason = (
            f"Payment {row.stripe_charge_id} was already captured on Stripe "
            f"({format_amount(amount, row.currency)}){note}"
        )
        _finish(
            row, PaymentMappingStatus.CAPTURED, None if ours else reason, captured_amount=amount
        )
    elif state == CANCELED:
        reason = f"Payment {row.stripe_charge_id} was already canceled on Stripe ({stripe_status})"
        _finish(row, PaymentMappingStatus.CANCELED, None if ours else reason, captured_amount=0)
    elif state == FAILED:
        _finish(row, PaymentMappingStatus.FAILED, f"Payment {row.stripe_charge_id} failed")
    else:
        return False
    log.info("payment %s: reconciled with Stripe: %s", row.stripe_charge_id, state)
    return True


def execute_capture(mapping_id: int) -> None:
    """Capture (or cancel) one decided ``to_capture`` payment exactly once; record the outcome.

    The payment is looked up in Stripe first, so a payment already captured or canceled
    (by the shop front, or by a lost earlier attempt) is reconciled, not sent again.
    """
    row = db.session.get(PaymentMapping, mapping_id)
    if row is None or row.status != PaymentMappingStatus.TO_CAPTURE or row.captured_amount is None:
        db.session.rollback()
        return
    operation = "capture" if row.captured_amount > 0 else "cancel"
    claim = attempts.claim(
        PaymentMapping,
        mapping_id,
        pending=PaymentMappingStatus.TO_CAPTURE,
        operation=operation,
        mirakl_id=row.stripe_charge_id,
    )
    if claim is None:
        return
    row = claim.row
    gateway = get_stripe()
    try:
        charge, intent = _load_payment(gateway, row.stripe_charge_id)
        state, stripe_status = payment_state(charge, intent)
        if state != CAPTURABLE:
            if not _reconcile(row, state, stripe_status, charge, intent, claim.is_recheck):
                reason = (
                    f"Payment {row.stripe_charge_id} is not ready yet, status is {stripe_status}"
                )
                _finish(row, PaymentMappingStatus.TO_CAPTURE, reason)
            return
        try:
            _send(gateway, row, charge, intent, claim.key)
        except StripeRefused as refused:
            charge, intent = _load_payment(gateway, row.stripe_charge_id)
            state, stripe_status = payment_state(charge, intent)
            if _reconcile(row, state, stripe_status, charge, intent):
                return
            raise refused from None
    except StripeRefused as exc:
        attempts.record_refusal(
            row,
            PaymentMappingStatus.TO_CAPTURE,
            f"Stripe refused to {operation}: {exc.message}",
            actor=MONEY_ACTOR,
        )
        log.warning(
            "payment %s (attempt %s): %s refused: %s (request %s)",
            row.stripe_charge_id,
            row.attempt,
            operation,
            exc.message,
            exc.request_id,
        )
        return
    except StripeOutcomeUnknown as exc:
        attempts.record_unknown(row, exc.message, actor=MONEY_ACTOR)
        return
    if operation == "capture":
        attempts.record_success(row, PaymentMappingStatus.CAPTURED, actor=MONEY_ACTOR)
    else:
        attempts.record_success(row, PaymentMappingStatus.CANCELED, actor=MONEY_ACTOR)
    log.info(
        "payment %s (attempt %s): %s done, %s",
        row.stripe_charge_id,
        row.attempt,
        operation,
        format_amount(row.captured_amount, row.currency),
    )
