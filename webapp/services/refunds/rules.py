"""Refunds (docs/refunds.md): the customer's refund and the seller's reversal.

Mirakl lists refunds waiting for payment (PA12 for product orders, flattened per refund
line; SPA12 for service orders). For each one the connector refunds the customer's charge
on Stripe, tells Mirakl (PA02 / SPA02), and pulls the seller's share back from the
order's transfer with a reversal (``TRANSFER_REFUND`` row; ``<refundId>_TAX`` too under
tax split), executed by ``ledger/transfer_job.py``.

This module holds the pure evaluation (``evaluate_refund``, ``evaluate_reversal_source``,
``evaluate_reversal_amount``, ``validation_entry``), its fact dataclasses and reason texts.
Orchestration: ``refunds/sync.py`` (``sync_product_refunds``, ``sync_service_refunds``, the
console's ``retry_refunds``) and ``reversal_sync`` (``sync_reversal_backlog``,
``retry_reversals``, ``find_dispatchable_reversals``); the money job ``execute_refund`` is in
``refunds/money_job.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webapp.models import (
    RefundStatus,
    RefundType,
    StripeRefund,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger.minor_units import to_major
from webapp.services.mirakl.client import TAX_SUFFIX, strip_tax_suffix

log = logging.getLogger(__name__)

SYNC_ACTOR = "process-refund"
JOB_ACTOR = "money-job"
REFUND_OPERATION = "refund"  # idempotency-key operation of the Stripe refund
CANCEL_OPERATION = "cancel-payment-intent"
RETRIABLE_REFUND = (RefundStatus.FAILED, RefundStatus.ON_HOLD)
RETRIABLE_TRANSFER = (TransferStatus.FAILED, TransferStatus.ON_HOLD)
UNCAPTURED_INTENT = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
KNOWN_INTENT = UNCAPTURED_INTENT | {"processing", "succeeded", "canceled"}
DEAD_STRIPE_REFUND = frozenset({"failed", "canceled"})  # moved no money
ORDER_TRANSFER_TYPE = {
    RefundType.PRODUCT_ORDER: TransferType.PRODUCT_ORDER,
    RefundType.SERVICE_ORDER: TransferType.SERVICE_ORDER,
}

NO_PAYMENT = "Cannot find the ID of the payment to be refunded"
NOT_READY = "Payment {} is not ready yet, status is {}"
SPLIT_FIRST = "Payment split has to occur before the transfer can be reversed for a refund"


# ================================================================ pure evaluation


@dataclass(frozen=True)
class Decision:
    """What to do with a row: its status, why, and the values found on the way."""

    status: str
    reason: str | None = None
    amount: int | None = None
    charge_id: str | None = None  # refunds: the charge to refund (a PI's latest charge)
    cancel_payment_intent: str | None = None  # refunds: uncaptured PI to cancel first


@dataclass(frozen=True)
class RefundFacts:
    """A refund row as evaluation sees it (amount in minor units)."""

    mirakl_refund_id: str
    type: str
    amount: int | None
    currency: str | None
    order_line_id: str | None = None
    stripe_refund_id: str | None = None


@dataclass(frozen=True)
class PaymentFacts:
    """The Stripe payment a refund is taken from, as retrieved (plain Stripe dicts)."""

    transaction_id: str
    charge: Mapping[str, Any] | None = None
    intent: Mapping[str, Any] | None = None
    error: str | None = None  # Stripe could not give the payment
    is_missing: bool = False  # ... because it does not exist (404)
    own_refund_id: str | None = None  # a live Stripe refund carrying our miraklRefundId


def evaluate_refund(refund: RefundFacts, payment: PaymentFacts | None) -> Decision:
    """Decide a refund row's status (docs/refunds.md, with our fixes).

    Checks, in order:
    1. product refund without an order line → ON_HOLD;
    2. amount missing or ≤ 0 → ABORTED;
    3. the Stripe refund is already recorded on the row → PENDING (re-validate on Mirakl);
    4. no payment found → ON_HOLD ``Cannot find the ID of the payment to be refunded``;
    5. Stripe does not know the payment → ABORTED (its message); could not ask → ON_HOLD;
    6. a live Stripe refund with our ``miraklRefundId`` exists → PENDING (re-validate);
    7. PaymentIntent canceled → ABORTED ``Payment %s has been canceled``;
    8. PaymentIntent uncaptured (requires_*) → cancel it, ON_HOLD ``… not ready yet …``;
    9. PaymentIntent processing → ON_HOLD; unknown status → ON_HOLD naming it;
    10. charge failed → ABORTED ``Payment %s failed``; pending → ON_HOLD; unknown → ON_HOLD;
    11. charge not captured → ON_HOLD; fully refunded → ABORTED ``… has been canceled``;
    12. currency differs from the charge's → ABORTED;
    13. amount above what is left to refund on the charge → ABORTED;
    14. otherwise → PENDING, with the charge to refund.
    """
    ref = refund.mirakl_refund_id
    if refund.type == RefundType.PRODUCT_ORDER and not refund.order_line_id:
        return Decision(RefundStatus.ON_HOLD, f"Refund {ref} has no order line in PA12")
    if refund.amount is None or refund.amount <= 0:
        return Decision(
            RefundStatus.ABORTED, f"Amount must be positive, input was: {refund.amount or 0}"
        )
    if refund.stripe_refund_id:
        charge_id = payment.transaction_id if payment else None
        return Decision(RefundStatus.PENDING, None, charge_id=charge_id)
    if payment is None:
        return Decision(RefundStatus.ON_HOLD, NO_PAYMENT)
    return _evaluate_payment(refund, payment)


def _evaluate_payment(refund: RefundFacts, payment: PaymentFacts) -> Decision:
    txn = payment.transaction_id
    if payment.error is not None:
        if payment.is_missing:
            return Decision(RefundStatus.ABORTED, payment.error)
        return Decision(RefundStatus.ON_HOLD, f"Cannot check payment {txn}: {payment.error}")
    charge, intent = payment.charge or {}, payment.intent
    if payment.own_refund_id:
        return Decision(RefundStatus.PENDING, None, charge_id=charge.get("id") or txn)
    if intent is not None:
        status = intent.get("status")
        if status == "canceled":
            return Decision(RefundStatus.ABORTED, f"Payment {txn} has been canceled")
        if status in UNCAPTURED_INTENT:
            return Decision(
                RefundStatus.ON_HOLD,
                NOT_READY.format(txn, status),
                cancel_payment_intent=intent["id"],
            )
        if status not in KNOWN_INTENT:
            return Decision(RefundStatus.ON_HOLD, f"Payment {txn} has an unknown status: {status}")
        if status != "succeeded" or not charge:
            return Decision(RefundStatus.ON_HOLD, NOT_READY.format(txn, status))
    return _evaluate_charge(refund, txn, charge)


def _evaluate_charge(refund: RefundFacts, txn: str, charge: Mapping[str, Any]) -> Decision:
    status = charge.get("status")
    if status == "failed":
        return Decision(RefundStatus.ABORTED, f"Payment {txn} failed")
    if status == "pending":
        return Decision(RefundStatus.ON_HOLD, NOT_READY.format(txn, status))
    if status != "succeeded":
        return Decision(RefundStatus.ON_HOLD, f"Payment {txn} has an unknown status: {status}")
    if not charge.get("captured"):
        return Decision(RefundStatus.ON_HOLD, NOT_READY.format(txn, "uncaptured"))
    if charge.get("refunded"):
        # The reference's wording: a refunded charge reads as canceled.
        return Decision(RefundStatus.ABORTED, f"Payment {txn} has been canceled")
    currency = (charge.get("currency") or "").lower()
    if refund.currency and currency and refund.currency.lower() != currency:
        return Decision(
            RefundStatus.ABORTED,
            f"Refund currency {refund.currency.upper()} differs from payment {txn} "
            f"currency {currency.upper()}",
        )
    left = int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
    if refund.amount > left:
        return Decision(
            RefundStatus.ABORTED,
            f"Refund amount {refund.amount} is more than what is left to refund on payment "
            f"{txn}: {left}",
        )
    return Decision(RefundStatus.PENDING, None, charge_id=charge.get("id") or txn)


@dataclass(frozen=True)
class ReversalSource:
    """What a reversal depends on in our own records."""

    mirakl_id: str  # refund id, or refund id + _TAX
    transfer_id: str | None  # the reversal's own trr_, once created
    refund_status: str | None  # None: no StripeRefund row
    order_id: str | None = None
    order_transfer_status: str | None = None  # None: no order transfer row
    order_transfer_id: str | None = None  # its tr_
    order_transfer_reason: str | None = None


def evaluate_reversal_source(source: ReversalSource) -> Decision | None:
    """Decide a reversal from our records, or None when its amount must now be computed.

    Checks, in order (docs/refunds.md steps 1–3, with our fix for aborted splits):
    1. already created in Stripe → CREATED;
    2. no refund row → ON_HOLD ``Cannot find StripeRefund with ID %s``;
    3. refund aborted → ABORTED ``Refund %s has been aborted``;
    4. refund not validated → ON_HOLD ``Refund %s has yet to be validated``;
    5. order split aborted or ignored → ABORTED, saying there is nothing to reverse;
    6. order split not done → ON_HOLD ``Payment split has to occur …``.
    """
    refund_id = strip_tax_suffix(source.mirakl_id)
    if source.transfer_id:
        return Decision(TransferStatus.CREATED, None)
    if source.refund_status is None:
        return Decision(TransferStatus.ON_HOLD, f"Cannot find StripeRefund with ID {refund_id}")
    if source.refund_status == RefundStatus.ABORTED:
        return Decision(TransferStatus.ABORTED, f"Refund {refund_id} has been aborted")
    if source.refund_status != RefundStatus.CREATED:
        return Decision(TransferStatus.ON_HOLD, f"Refund {refund_id} has yet to be validated")
    split = source.order_transfer_status
    if split in (TransferStatus.ABORTED, TransferStatus.IGNORED):
        word = "aborted" if split == TransferStatus.ABORTED else "ignored"
        return Decision(
            TransferStatus.ABORTED,
            f"Payment split of order {source.order_id} was {word} "
            f"({source.order_transfer_reason or 'no reason given'}): no transfer to reverse",
        )
    if split != TransferStatus.CREATED or not source.order_transfer_id:
        return Decision(TransferStatus.ON_HOLD, SPLIT_FIRST)
    return None


@dataclass(frozen=True)
class ReversalAmount:
    """Amounts behind a reversal, in minor units; ``*_error`` when a fact is missing."""

    mirakl_id: str
    order_transfer_id: str
    refund_amount: int = 0
    refunded_commission: int = 0
    refunded_tax: int = 0
    is_tax_split: bool = False
    transfer_left: int = 0  # the order transfer's amount − amount_reversed, in Stripe
    pending_elsewhere: int = 0  # other reversals of that transfer waiting to be sent
    order_error: str | None = None
    transfer_error: str | None = None


def evaluate_reversal_amount(facts: ReversalAmount) -> Decision:
    """Decide a reversal whose refund is validated and whose order was split.

    Checks, in order (docs/refunds.md steps 5–6, with our limits):
    1. the order could not be read from Mirakl → ON_HOLD;
    2. amount = refund − refunded commission (− refunded tax under tax split); a
       ``_TAX`` reversal = refunded tax; amount ≤ 0 → ABORTED (nothing to pull back);
    3. the order transfer could not be read from Stripe → ON_HOLD;
    4. the order transfer is fully reversed already → ABORTED;
    5. amount above what is left on it (minus reversals waiting to go) → ON_HOLD;
    6. otherwise → PENDING with the amount.
    """
    if facts.order_error:
        return Decision(TransferStatus.ON_HOLD, facts.order_error)
    if facts.mirakl_id.endswith(TAX_SUFFIX):
        amount, detail = facts.refunded_tax, f"refunded tax {facts.refunded_tax}"
    else:
        tax = facts.refunded_tax if facts.is_tax_split else 0
        amount = facts.refund_amount - facts.refunded_commission - tax
        detail = f"refund {facts.refund_amount} − refunded commission {facts.refunded_commission}"
        if facts.is_tax_split:
            detail += f" − refunded tax {tax}"
    if amount <= 0:
        return Decision(
            TransferStatus.ABORTED,
            f"Amount must be positive, input was: {amount} ({detail})",
            amount,
        )
    tr = facts.order_transfer_id
    if facts.transfer_error:
        return Decision(
            TransferStatus.ON_HOLD, f"Cannot check transfer {tr}: {facts.transfer_error}", amount
        )
    if facts.transfer_left <= 0:
        return Decision(
            TransferStatus.ABORTED, f"Transfer {tr} has already been fully reversed", amount
        )
    left = facts.transfer_left - facts.pending_elsewhere
    if amount > left:
        return Decision(
            TransferStatus.ON_HOLD,
            f"Reversal of {amount} is more than what is left on transfer {tr}: {max(left, 0)}",
            amount,
        )
    return Decision(TransferStatus.PENDING, None, amount)


def validation_entry(row: StripeRefund) -> dict[str, Any]:
    """The PA02 (product) or SPA02 (service) entry validating a refunded refund."""
    amount, currency = to_major(row.amount, row.currency), row.currency.upper()
    if row.type == RefundType.SERVICE_ORDER:
        return {
            "id": row.mirakl_refund_id,
            "order_id": row.mirakl_order_id,
            "amount": amount,
            "currency_code": currency,
            "state": "OK",
            "transaction_number": row.stripe_refund_id,
        }
    return {
        "refund_id": row.mirakl_refund_id,
        "amount": amount,
        "currency_iso_code": currency,
        "payment_status": "OK",
        "transaction_number": row.stripe_refund_id,
    }


def is_no_longer_waiting(message: str) -> bool:
    """Whether a Mirakl refusal says the refund is no longer waiting (validated already)."""
    text = message.lower()
    return "waiting" in text and "not found" not in text
