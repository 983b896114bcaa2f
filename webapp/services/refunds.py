"""Refunds (reference-connector.md §5): the customer's refund and the seller's reversal.

Mirakl lists refunds waiting for payment (PA12 for product orders, flattened per refund
line; SPA12 for service orders). For each one the connector refunds the customer's charge
on Stripe, tells Mirakl (PA02 / SPA02), and pulls the seller's share back from the
order's transfer with a reversal (``TRANSFER_REFUND`` row; ``<refundId>_TAX`` too under
tax split), executed by ``transfer_execution``.

Top of the module: pure evaluation (``evaluate_refund``, ``evaluate_reversal_source``,
``evaluate_reversal_amount``, ``validation_entry``). Below: orchestration
(``sync_product_refunds``, ``sync_service_refunds``, ``sync_reversal_backlog``, the
console's ``retry_refunds`` / ``retry_reversals``) and the money job ``execute_refund``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.clock import utcnow
from webapp.errors import (
    MiraklError,
    MiraklUnavailable,
    StripeOutcomeUnknown,
    StripeRefused,
)
from webapp.extensions import db
from webapp.models import (
    PaymentMapping,
    RefundStatus,
    RefundType,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services import attempts, orders, transitions
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.idempotency import idempotency_key
from webapp.services.mirakl import TAX_SUFFIX, strip_tax_suffix
from webapp.services.mirakl_types import BadItem, PendingRefund, ProductOrder, ServiceOrder
from webapp.services.money import to_major, to_minor
from webapp.services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

R, T = RefundStatus, TransferStatus
SYNC_ACTOR = "process-refund"
JOB_ACTOR = "money-job"
REFUND_OPERATION = "refund"  # idempotency-key operation of the Stripe refund
CANCEL_OPERATION = "cancel-payment-intent"
RETRIABLE_REFUND = (R.FAILED.value, R.ON_HOLD.value)
RETRIABLE_TRANSFER = (T.FAILED.value, T.ON_HOLD.value)
UNCAPTURED_INTENT = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
KNOWN_INTENT = UNCAPTURED_INTENT | {"processing", "succeeded", "canceled"}
DEAD_STRIPE_REFUND = frozenset({"failed", "canceled"})  # moved no money
ORDER_TRANSFER_TYPE = {
    RefundType.PRODUCT_ORDER.value: TransferType.PRODUCT_ORDER.value,
    RefundType.SERVICE_ORDER.value: TransferType.SERVICE_ORDER.value,
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
    """Decide a refund row's status (reference §5.2, with our fixes).

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
    11. charge not captured → ON_HOLD; fully refunded → ABORTED;
    12. currency differs from the charge's → ABORTED;
    13. amount above what is left to refund on the charge → ABORTED;
    14. otherwise → PENDING, with the charge to refund.
    """
    ref = refund.mirakl_refund_id
    if refund.type == RefundType.PRODUCT_ORDER.value and not refund.order_line_id:
        return Decision(R.ON_HOLD, f"Refund {ref} has no order line in PA12")
    if refund.amount is None or refund.amount <= 0:
        return Decision(R.ABORTED, f"Amount must be positive, input was: {refund.amount or 0}")
    if refund.stripe_refund_id:
        charge_id = payment.transaction_id if payment else None
        return Decision(R.PENDING, None, charge_id=charge_id)
    if payment is None:
        return Decision(R.ON_HOLD, NO_PAYMENT)
    return _evaluate_payment(refund, payment)


def _evaluate_payment(refund: RefundFacts, payment: PaymentFacts) -> Decision:
    txn = payment.transaction_id
    if payment.error is not None:
        if payment.is_missing:
            return Decision(R.ABORTED, payment.error)
        return Decision(R.ON_HOLD, f"Cannot check payment {txn}: {payment.error}")
    charge, intent = payment.charge or {}, payment.intent
    if payment.own_refund_id:
        return Decision(R.PENDING, None, charge_id=charge.get("id") or txn)
    if intent is not None:
        status = intent.get("status")
        if status == "canceled":
            return Decision(R.ABORTED, f"Payment {txn} has been canceled")
        if status in UNCAPTURED_INTENT:
            return Decision(
                R.ON_HOLD, NOT_READY.format(txn, status), cancel_payment_intent=intent["id"]
            )
        if status not in KNOWN_INTENT:
            return Decision(R.ON_HOLD, f"Payment {txn} has an unknown status: {status}")
        if status != "succeeded" or not charge:
            return Decision(R.ON_HOLD, NOT_READY.format(txn, status))
    return _evaluate_charge(refund, txn, charge)


def _evaluate_charge(refund: RefundFacts, txn: str, charge: Mapping[str, Any]) -> Decision:
    status = charge.get("status")
    if status == "failed":
        return Decision(R.ABORTED, f"Payment {txn} failed")
    if status == "pending":
        return Decision(R.ON_HOLD, NOT_READY.format(txn, status))
    if status != "succeeded":
        return Decision(R.ON_HOLD, f"Payment {txn} has an unknown status: {status}")
    if not charge.get("captured"):
        return Decision(R.ON_HOLD, NOT_READY.format(txn, "uncaptured"))
    if charge.get("refunded"):
        return Decision(R.ABORTED, f"Payment {txn} has been fully refunded")
    currency = (charge.get("currency") or "").lower()
    if refund.currency and currency and refund.currency.lower() != currency:
        return Decision(
            R.ABORTED,
            f"Refund currency {refund.currency.upper()} differs from payment {txn} "
            f"currency {currency.upper()}",
        )
    left = int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
    if refund.amount > left:
        return Decision(
            R.ABORTED,
            f"Refund amount {refund.amount} is more than what is left to refund on payment "
            f"{txn}: {left}",
        )
    return Decision(R.PENDING, None, charge_id=charge.get("id") or txn)


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

    Checks, in order (reference §5.4 steps 1–3, with our fix for aborted splits):
    1. already created in Stripe → CREATED;
    2. no refund row → ON_HOLD ``Cannot find StripeRefund with ID %s``;
    3. refund aborted → ABORTED ``Refund %s has been aborted``;
    4. refund not validated → ON_HOLD ``Refund %s has yet to be validated``;
    5. order split aborted or ignored → ABORTED, saying there is nothing to reverse;
    6. order split not done → ON_HOLD ``Payment split has to occur …``.
    """
    refund_id = strip_tax_suffix(source.mirakl_id)
    if source.transfer_id:
        return Decision(T.CREATED, None)
    if source.refund_status is None:
        return Decision(T.ON_HOLD, f"Cannot find StripeRefund with ID {refund_id}")
    if source.refund_status == R.ABORTED.value:
        return Decision(T.ABORTED, f"Refund {refund_id} has been aborted")
    if source.refund_status != R.CREATED.value:
        return Decision(T.ON_HOLD, f"Refund {refund_id} has yet to be validated")
    split = source.order_transfer_status
    if split in (T.ABORTED.value, T.IGNORED.value):
        word = "aborted" if split == T.ABORTED.value else "ignored"
        return Decision(
            T.ABORTED,
            f"Payment split of order {source.order_id} was {word} "
            f"({source.order_transfer_reason or 'no reason given'}): no transfer to reverse",
        )
    if split != T.CREATED.value or not source.order_transfer_id:
        return Decision(T.ON_HOLD, SPLIT_FIRST)
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

    Checks, in order (reference §5.4 steps 5–6, with our limits):
    1. the order could not be read from Mirakl → ON_HOLD;
    2. amount = refund − refunded commission (− refunded tax under tax split); a
       ``_TAX`` reversal = refunded tax; amount ≤ 0 → ABORTED (nothing to pull back);
    3. the order transfer could not be read from Stripe → ON_HOLD;
    4. the order transfer is fully reversed already → ABORTED;
    5. amount above what is left on it (minus reversals waiting to go) → ON_HOLD;
    6. otherwise → PENDING with the amount.
    """
    if facts.order_error:
        return Decision(T.ON_HOLD, facts.order_error)
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
            T.ABORTED, f"Amount must be positive, input was: {amount} ({detail})", amount
        )
    tr = facts.order_transfer_id
    if facts.transfer_error:
        return Decision(T.ON_HOLD, f"Cannot check transfer {tr}: {facts.transfer_error}", amount)
    if facts.transfer_left <= 0:
        return Decision(T.ABORTED, f"Transfer {tr} has already been fully reversed", amount)
    left = facts.transfer_left - facts.pending_elsewhere
    if amount > left:
        return Decision(
            T.ON_HOLD,
            f"Reversal of {amount} is more than what is left on transfer {tr}: {max(left, 0)}",
            amount,
        )
    return Decision(T.PENDING, None, amount)


def validation_entry(row: StripeRefund) -> dict[str, Any]:
    """The PA02 (product) or SPA02 (service) entry validating a refunded refund (§5.3)."""
    amount, currency = to_major(row.amount, row.currency), row.currency.upper()
    if row.type == RefundType.SERVICE_ORDER.value:
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


# ================================================================ refund rows


def sync_product_refunds() -> dict[str, int]:
    """PA12: create or re-evaluate the rows of product refunds waiting for payment."""
    return _sync_refunds(get_mirakl().list_pending_refunds(), RefundType.PRODUCT_ORDER.value)


def sync_service_refunds() -> dict[str, int]:
    """SPA12: create or re-evaluate the rows of service refunds waiting for payment."""
    return _sync_refunds(
        get_mirakl().list_service_pending_refunds(), RefundType.SERVICE_ORDER.value
    )


def _sync_refunds(items: Iterable[PendingRefund | BadItem], refund_type: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for item in items:
        counts["fetched"] += 1
        if isinstance(item, BadItem):
            counts["unreadable"] += 1
            log.warning("%s item %s: unreadable: %s", item.code, item.mirakl_id, item.reason)
            continue
        try:
            row, touched = _upsert_refund(item, refund_type)
            _ensure_reversal_rows(row)
            db.session.commit()
        except MiraklUnavailable:
            raise
        except Exception:  # noqa: BLE001 - per-item boundary: one refund never stops the run
            db.session.rollback()
            log.exception("refund %s (order %s): evaluation crashed", item.id, item.order_id)
            counts["errors"] += 1
            continue
        counts[row.status if touched else "unchanged"] += 1
    return dict(counts)


def _upsert_refund(item: PendingRefund, refund_type: str) -> tuple[StripeRefund, bool]:
    row = _find_refund(item.id)
    if row is not None:
        if row.status not in RETRIABLE_REFUND:
            return row, False
        _apply_refund(row, evaluate_refund_row(row), SYNC_ACTOR)
        return row, True
    row = StripeRefund(
        type=refund_type,
        currency=item.currency,
        mirakl_refund_id=item.id,
        mirakl_commercial_order_id=item.commercial_id or None,
        mirakl_order_id=item.order_id,
        mirakl_order_line_id=item.order_line_id,
        mirakl_shop_id=item.shop_id,
    )
    try:
        row.amount = to_minor(item.amount, item.currency)
    except ValueError:
        row.amount = None
    decision = evaluate_refund_row(row)
    if decision.charge_id:
        row.transaction_id = decision.charge_id
    transitions.create(row, decision.status, decision.reason, actor=SYNC_ACTOR)
    log.info("refund %s (order %s): %s (%s)", item.id, item.order_id, row.status, row.status_reason)
    return row, True


def evaluate_refund_row(row: StripeRefund) -> Decision:
    """Gather the payment facts of a refund row, evaluate, and cancel an uncaptured PI."""
    txn = row.transaction_id or _find_transaction_id(row)
    if txn and not row.transaction_id and row.id is None:
        row.transaction_id = txn
    payment = None
    if txn:
        payment = PaymentFacts(txn) if row.stripe_refund_id else _gather_payment(txn, row)
    decision = evaluate_refund(_refund_facts(row), payment)
    if decision.cancel_payment_intent:
        _cancel_payment_intent(decision.cancel_payment_intent, row)
    return decision


def _refund_facts(row: StripeRefund) -> RefundFacts:
    return RefundFacts(
        mirakl_refund_id=row.mirakl_refund_id,
        type=row.type,
        amount=row.amount,
        currency=row.currency,
        order_line_id=row.mirakl_order_line_id,
        stripe_refund_id=row.stripe_refund_id,
    )


def _apply_refund(row: StripeRefund, decision: Decision, actor: str) -> None:
    fields: dict[str, Any] = {}
    if decision.charge_id and decision.charge_id != row.transaction_id:
        fields["transaction_id"] = decision.charge_id
    if decision.status == R.PENDING:
        fields["attempted_at"] = None
    transitions.transition(row, decision.status, decision.reason, actor=actor, **fields)


def _find_refund(mirakl_refund_id: str) -> StripeRefund | None:
    return db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == mirakl_refund_id)
    ).scalar_one_or_none()


def _find_transaction_id(row: StripeRefund) -> str | None:
    """The charge of the order: from its transfer's source, else from the payment mapping."""
    transfer = _find_transfer(ORDER_TRANSFER_TYPE[row.type], row.mirakl_order_id or "")
    if transfer is not None and transfer.transaction_id:
        return transfer.transaction_id
    if not row.mirakl_commercial_order_id:
        return None
    return db.session.execute(
        select(PaymentMapping.stripe_charge_id)
        .where(PaymentMapping.mirakl_commercial_order_id == row.mirakl_commercial_order_id)
        .order_by(PaymentMapping.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _gather_payment(txn: str, row: StripeRefund) -> PaymentFacts:
    gateway = get_stripe()
    try:
        intent, charge = None, None
        if txn.startswith("pi_"):
            intent = gateway.retrieve_payment_intent(txn)
            latest = intent.get("latest_charge")
            if isinstance(latest, Mapping):
                latest = latest.get("id")
            if intent.get("status") == "succeeded" and latest:
                charge = gateway.retrieve_charge(latest)
        else:
            charge = gateway.retrieve_charge(txn)
            if charge.get("payment_intent"):
                intent = gateway.retrieve_payment_intent(charge["payment_intent"])
        own = None
        if charge and int(charge.get("amount_refunded") or 0) > 0:
            own = find_own_refund(gateway, charge["id"], row.mirakl_refund_id)
    except StripeRefused as exc:
        return PaymentFacts(txn, error=exc.message, is_missing=exc.http_status == 404)
    except StripeOutcomeUnknown as exc:
        return PaymentFacts(txn, error=exc.message)
    return PaymentFacts(txn, charge, intent, own_refund_id=own["id"] if own else None)


def find_own_refund(
    gateway: StripeGateway, charge_id: str, mirakl_refund_id: str
) -> dict[str, Any] | None:
    """The live Stripe refund an earlier attempt made for this Mirakl refund, if any."""
    for refund in gateway.list_refunds(charge_id):
        metadata = refund.get("metadata") or {}
        if (
            metadata.get("miraklRefundId") == mirakl_refund_id
            and refund.get("status") not in DEAD_STRIPE_REFUND
        ):
            return refund
    return None


def _cancel_payment_intent(intent_id: str, row: StripeRefund) -> None:
    """Release an uncaptured payment a refund arrived for (reference PR #131)."""
    key = idempotency_key(CANCEL_OPERATION, intent_id, 0)
    try:
        get_stripe().cancel_payment_intent(intent_id, idempotency_key=key)
        log.info("refund %s: canceled uncaptured payment %s", row.mirakl_refund_id, intent_id)
    except (StripeRefused, StripeOutcomeUnknown) as exc:
        log.warning(
            "refund %s: could not cancel payment %s: %s (request %s)",
            row.mirakl_refund_id,
            intent_id,
            exc.message,
            exc.request_id,
        )


def retry_refunds(ids: Iterable[int], *, actor: str) -> list[int]:
    """Re-evaluate FAILED/ON_HOLD refund rows; return the ids now PENDING (to dispatch)."""
    ready: list[int] = []
    for row_id in ids:
        row = db.session.get(StripeRefund, row_id)
        if row is None or row.status not in RETRIABLE_REFUND:
            continue
        _apply_refund(row, evaluate_refund_row(row), actor)
        db.session.commit()
        if row.status == R.PENDING.value:
            ready.append(row.id)
    return ready


# ================================================================ reversal rows


def _find_transfer(transfer_type: str, mirakl_id: str) -> StripeTransfer | None:
    return db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.type == transfer_type, StripeTransfer.mirakl_id == mirakl_id
        )
    ).scalar_one_or_none()


def _is_tax_split() -> bool:
    return bool(current_app.config["ENABLE_PAYMENT_TAX_SPLIT"])


def _ensure_reversal_rows(refund: StripeRefund) -> None:
    """The refund's reversal rows exist (``<refundId>``, and ``_TAX`` under tax split)."""
    ids = [refund.mirakl_refund_id]
    if _is_tax_split():
        ids.append(refund.mirakl_refund_id + TAX_SUFFIX)
    for mirakl_id in ids:
        if _find_transfer(TransferType.REFUND.value, mirakl_id) is not None:
            continue
        row = StripeTransfer(
            mirakl_id=mirakl_id,
            type=TransferType.REFUND.value,
            currency=refund.currency,
            mirakl_shop_id=refund.mirakl_shop_id,
        )
        decision = evaluate_reversal_source(_reversal_source(row, refund))
        # A row whose amount is still to compute waits for this run's backlog pass.
        status = decision.status if decision else T.ON_HOLD
        reason = decision.reason if decision else "Reversal amount to be computed"
        transitions.create(row, status, reason, actor=SYNC_ACTOR)


def _order_transfer(refund: StripeRefund, mirakl_id: str) -> StripeTransfer | None:
    suffix = TAX_SUFFIX if mirakl_id.endswith(TAX_SUFFIX) else ""
    return _find_transfer(ORDER_TRANSFER_TYPE[refund.type], f"{refund.mirakl_order_id}{suffix}")


def _reversal_source(row: StripeTransfer, refund: StripeRefund | None) -> ReversalSource:
    split = _order_transfer(refund, row.mirakl_id) if refund is not None else None
    return ReversalSource(
        mirakl_id=row.mirakl_id,
        transfer_id=row.transfer_id,
        refund_status=refund.status if refund else None,
        order_id=refund.mirakl_order_id if refund else None,
        order_transfer_status=split.status if split else None,
        order_transfer_id=split.transfer_id if split else None,
        order_transfer_reason=split.status_reason if split else None,
    )


def sync_reversal_backlog() -> dict[str, int]:
    """Re-evaluate every ON_HOLD/FAILED reversal row (new ones included)."""
    rows = list(
        db.session.execute(
            select(StripeTransfer)
            .where(
                StripeTransfer.type == TransferType.REFUND.value,
                StripeTransfer.status.in_(RETRIABLE_TRANSFER),
            )
            .order_by(StripeTransfer.id)
        ).scalars()
    )
    return _evaluate_reversals(rows, SYNC_ACTOR)


def retry_reversals(ids: Iterable[int], *, actor: str) -> list[int]:
    """Re-evaluate FAILED/ON_HOLD reversal rows; return the ids now PENDING (to dispatch)."""
    rows = list(
        db.session.execute(
            select(StripeTransfer)
            .where(
                StripeTransfer.id.in_(list(ids)),
                StripeTransfer.type == TransferType.REFUND.value,
                StripeTransfer.status.in_(RETRIABLE_TRANSFER),
            )
            .order_by(StripeTransfer.id)
        ).scalars()
    )
    _evaluate_reversals(rows, actor)
    return [row.id for row in rows if row.status == T.PENDING.value]


def find_dispatchable_reversals() -> list[int]:
    """PENDING reversal rows with no live claim (new, or whose job was lost)."""
    ids = attempts.find_dispatchable(StripeTransfer, T.PENDING.value)
    if not ids:
        return []
    return list(
        db.session.execute(
            select(StripeTransfer.id)
            .where(StripeTransfer.id.in_(ids), StripeTransfer.type == TransferType.REFUND.value)
            .order_by(StripeTransfer.id)
        ).scalars()
    )


def _evaluate_reversals(rows: list[StripeTransfer], actor: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    ready: list[tuple[StripeTransfer, StripeRefund, StripeTransfer]] = []
    for row in rows:
        refund = _find_refund(strip_tax_suffix(row.mirakl_id))
        decision = evaluate_reversal_source(_reversal_source(row, refund))
        if decision is None:
            ready.append((row, refund, _order_transfer(refund, row.mirakl_id)))
            continue
        _apply_reversal(row, decision, actor)
        counts[row.status] += 1
    db.session.commit()
    if ready:
        found = _fetch_orders([refund for _, refund, _ in ready])
        transfers: dict[str, tuple[int, str | None]] = {}
        for row, refund, split in ready:
            try:
                facts = _reversal_amount(row, refund, split, found, transfers)
                _apply_reversal(row, evaluate_reversal_amount(facts), actor, split=split)
                db.session.commit()
            except MiraklUnavailable:
                raise
            except Exception:  # noqa: BLE001 - per-item boundary
                db.session.rollback()
                log.exception("reversal %s: evaluation crashed", row.mirakl_id)
                counts["errors"] += 1
                continue
            counts[row.status] += 1
    return dict(counts)


def _fetch_orders(
    refunds: list[StripeRefund],
) -> dict[str, ProductOrder | ServiceOrder | BadItem]:
    """The orders of these refunds (OR11 / SOR11 by id, batched), keyed by order id."""
    product = [r.mirakl_order_id for r in refunds if r.type == RefundType.PRODUCT_ORDER.value]
    service = [r.mirakl_order_id for r in refunds if r.type == RefundType.SERVICE_ORDER.value]
    mirakl = get_mirakl()
    items: list[Any] = []
    if product:
        items.extend(mirakl.list_orders_by_id(product))
    if service:
        items.extend(mirakl.list_service_orders_by_id(service))
    return {item.mirakl_id if isinstance(item, BadItem) else item.id: item for item in items}


def _reversal_amount(
    row: StripeTransfer,
    refund: StripeRefund,
    split: StripeTransfer,
    found: Mapping[str, Any],
    transfers: dict[str, tuple[int, str | None]],
) -> ReversalAmount:
    tr = split.transfer_id
    order = found.get(refund.mirakl_order_id)
    base = ReversalAmount(mirakl_id=row.mirakl_id, order_transfer_id=tr)
    if order is None:
        return replace(base, order_error=f"Cannot find order {refund.mirakl_order_id} in Mirakl")
    if isinstance(order, BadItem):
        return replace(
            base, order_error=f"Cannot read order {refund.mirakl_order_id}: {order.reason}"
        )
    rid, line = refund.mirakl_refund_id, refund.mirakl_order_line_id
    currency = order.currency
    if tr not in transfers:
        transfers[tr] = _transfer_left(tr)
    left, error = transfers[tr]
    return ReversalAmount(
        mirakl_id=row.mirakl_id,
        order_transfer_id=tr,
        refund_amount=refund.amount or 0,
        refunded_commission=to_minor(orders.refunded_commission(order, rid, line), currency),
        refunded_tax=to_minor(orders.refunded_tax(order, rid, line), currency),
        is_tax_split=_is_tax_split(),
        transfer_left=left,
        pending_elsewhere=_pending_reversals(tr, row.id),
        transfer_error=error,
    )


def _transfer_left(transfer_id: str) -> tuple[int, str | None]:
    try:
        transfer = get_stripe().retrieve_transfer(transfer_id)
    except (StripeRefused, StripeOutcomeUnknown) as exc:
        return 0, exc.message
    return int(transfer.get("amount") or 0) - int(transfer.get("amount_reversed") or 0), None


def _pending_reversals(transfer_id: str, except_id: int) -> int:
    """Amounts of other reversals of this transfer decided but not yet sent."""
    total = db.session.execute(
        select(func.coalesce(func.sum(StripeTransfer.amount), 0)).where(
            StripeTransfer.type == TransferType.REFUND.value,
            StripeTransfer.transaction_id == transfer_id,
            StripeTransfer.status == T.PENDING.value,
            StripeTransfer.id != except_id,
        )
    ).scalar_one()
    return int(total)


def _apply_reversal(
    row: StripeTransfer, decision: Decision, actor: str, split: StripeTransfer | None = None
) -> None:
    fields: dict[str, Any] = {}
    if decision.amount is not None:
        fields["amount"] = decision.amount
    if split is not None:
        fields.update(
            transaction_id=split.transfer_id,
            account_mapping_id=split.account_mapping_id,
            mirakl_shop_id=split.mirakl_shop_id or row.mirakl_shop_id,
            currency=split.currency or row.currency,
        )
    if decision.status == T.PENDING:
        fields["attempted_at"] = None
    if decision.status == row.status and decision.reason == row.status_reason and not fields:
        return
    transitions.transition(row, decision.status, decision.reason, actor=actor, **fields)


# ================================================================ the money job


def execute_refund(refund_id: int) -> None:
    """Refund one PENDING row on Stripe exactly once, then validate it on Mirakl."""
    row = db.session.get(StripeRefund, refund_id)
    if row is None:
        return
    claim = attempts.claim(
        StripeRefund,
        refund_id,
        pending=R.PENDING.value,
        operation=REFUND_OPERATION,
        mirakl_id=row.mirakl_refund_id,
    )
    if claim is None:
        return
    if claim.row.stripe_refund_id or refund_in_stripe(claim):
        validate_on_mirakl(claim.row)


def refund_in_stripe(claim: attempts.Claim) -> bool:
    """Create (or find) the Stripe refund of a claimed row and commit its id at once."""
    row = claim.row
    if not row.transaction_id or not row.amount or row.amount <= 0:
        problem = NO_PAYMENT if not row.transaction_id else "Amount must be positive"
        transitions.transition(row, R.ON_HOLD, problem, actor=JOB_ACTOR, attempted_at=None)
        db.session.commit()
        return False
    gateway = get_stripe()
    try:
        found = (
            find_own_refund(gateway, row.transaction_id, row.mirakl_refund_id)
            if (claim.is_recheck)
            else None
        )
        refund = found or gateway.create_refund(
            row.transaction_id,
            row.amount,
            metadata={"miraklRefundId": row.mirakl_refund_id, "miraklOrderId": row.mirakl_order_id},
            idempotency_key=claim.key,
        )
    except StripeRefused as exc:
        refund = _find_own_refund_quietly(gateway, row)
        if refund is None:
            attempts.record_refusal(row, R.FAILED, exc.message, actor=JOB_ACTOR)
            log.warning(
                "refund %s (attempt %s): refused: %s (request %s)",
                row.mirakl_refund_id,
                row.attempt,
                exc.message,
                exc.request_id,
            )
            return False
    except StripeOutcomeUnknown as exc:
        attempts.record_unknown(row, exc.message, actor=JOB_ACTOR)
        return False
    if refund.get("status") in DEAD_STRIPE_REFUND:
        reason = f"Stripe refund {refund['id']} is {refund['status']}"
        attempts.record_refusal(row, R.FAILED, reason, actor=JOB_ACTOR)
        return False
    transitions.transition(
        row,
        R.PENDING,
        f"Refunded on Stripe ({refund['id']}), to validate on Mirakl",
        actor=JOB_ACTOR,
        stripe_refund_id=refund["id"],
    )
    db.session.commit()
    log.info("refund %s (attempt %s): refunded %s", row.mirakl_refund_id, row.attempt, refund["id"])
    return True


def _find_own_refund_quietly(gateway: StripeGateway, row: StripeRefund) -> dict | None:
    try:
        return find_own_refund(gateway, row.transaction_id, row.mirakl_refund_id)
    except (StripeRefused, StripeOutcomeUnknown):
        return None


def validate_on_mirakl(row: StripeRefund) -> None:
    """PA02/SPA02 for a row refunded on Stripe; record CREATED, FAILED, or retry later."""
    mirakl = get_mirakl()
    is_service = row.type == RefundType.SERVICE_ORDER.value
    confirm = mirakl.confirm_service_refunds if is_service else mirakl.confirm_refunds
    try:
        error = confirm([validation_entry(row)])[0]
        if error is not None and is_no_longer_waiting(error) and not _is_still_listed(row):
            log.info("refund %s: already validated on Mirakl", row.mirakl_refund_id)
            error = None
    except MiraklError as exc:
        # Stays PENDING with its claim: the sweep validates it again later, never refunding
        # twice since the Stripe refund id is stored.
        attempts.record_unknown(row, f"Mirakl validation: {exc.message}", actor=JOB_ACTOR)
        return
    if error is None:
        attempts.record_success(row, R.CREATED, actor=JOB_ACTOR, mirakl_validation_time=utcnow())
        log.info("refund %s: validated on Mirakl", row.mirakl_refund_id)
        return
    transitions.transition(row, R.FAILED, error, actor=JOB_ACTOR, attempted_at=None)
    db.session.commit()
    log.warning("refund %s: Mirakl refused the validation: %s", row.mirakl_refund_id, error)


def _is_still_listed(row: StripeRefund) -> bool:
    mirakl = get_mirakl()
    if row.type == RefundType.SERVICE_ORDER.value:
        items = mirakl.list_service_pending_refunds()
    else:
        items = mirakl.list_pending_refunds()
    return any(not isinstance(item, BadItem) and item.id == row.mirakl_refund_id for item in items)
