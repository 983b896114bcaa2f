"""Refund orchestration (docs/refunds.md): PA12 / SPA12 refunds waiting for payment → StripeRefund
rows.

Gathers the payment facts through the Stripe gateway, evaluates them with
``refunds.evaluate_refund`` and writes rows through ``transitions``; creates each refund's
reversal rows through ``reversal_sync``. Public: ``sync_product_refunds``, ``sync_service_refunds``,
``evaluate_refund_row``, ``retry_refunds``. The Stripe refund itself is ``refunds/money_job.py``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from webapp.errors import (
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
)
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.ledger.keys import idempotency_key
from webapp.services.ledger.minor_units import MAX_AMOUNT, to_minor
from webapp.services.mirakl.fields import guess_id
from webapp.services.mirakl.types import BadItem, PendingRefund
from webapp.services.refunds.money_job import find_own_refund
from webapp.services.refunds.reversal_sync import (
    _ensure_reversal_rows,
    _find_refund,
    _find_transfer,
)
from webapp.services.refunds.rules import (
    CANCEL_OPERATION,
    ORDER_TRANSFER_TYPE,
    RETRIABLE_REFUND,
    SYNC_ACTOR,
    Decision,
    PaymentFacts,
    RefundFacts,
    evaluate_refund,
)

log = logging.getLogger(__name__)

# Ours: the reference drops unreadable refunds silently, or crashes on huge amounts.
REFUND_UNREADABLE = "Refund %s could not be read from Mirakl: %s"
AMOUNT_TOO_LARGE = "Amount is too large, input was: %d"


def sync_product_refunds() -> dict[str, int]:
    """PA12: create or re-evaluate the rows of product refunds waiting for payment."""
    return _sync_refunds(get_mirakl().list_pending_refunds(), RefundType.PRODUCT_ORDER)


def sync_service_refunds() -> dict[str, int]:
    """SPA12: create or re-evaluate the rows of service refunds waiting for payment."""
    return _sync_refunds(get_mirakl().list_service_pending_refunds(), RefundType.SERVICE_ORDER)


def _sync_refunds(items: Iterable[PendingRefund | BadItem], refund_type: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for item in items:
        counts["fetched"] += 1
        if isinstance(item, BadItem):
            counts["unreadable"] += 1
            log.warning("%s item %s: unreadable: %s", item.code, item.mirakl_id, item.reason)
            try:
                _record_unreadable(item, refund_type)
            except Exception:  # noqa: BLE001 - per-item boundary: one refund never stops the run
                db.session.rollback()
                log.exception("%s item %s: could not be recorded", item.code, item.mirakl_id)
                counts["errors"] += 1
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


def _item_amount(item: PendingRefund) -> tuple[int | None, str | None]:
    """The refund's amount in minor units, or why it cannot be stored (too large)."""
    try:
        amount = to_minor(item.amount, item.currency)
    except ValueError:
        return None, None
    if abs(amount) > MAX_AMOUNT:
        return None, AMOUNT_TOO_LARGE % amount
    return amount, None


def _item_facts(item: PendingRefund, amount: int | None) -> dict[str, Any]:
    return {
        "currency": item.currency,
        "amount": amount,
        "mirakl_commercial_order_id": item.commercial_id or None,
        "mirakl_order_id": item.order_id,
        "mirakl_order_line_id": item.order_line_id,
        "mirakl_shop_id": item.shop_id,
    }


def _upsert_refund(item: PendingRefund, refund_type: str) -> tuple[StripeRefund, bool]:
    amount, problem = _item_amount(item)
    row = _find_refund(item.id)
    if row is not None:
        if row.status not in RETRIABLE_REFUND or (
            row.status == RefundStatus.FAILED and not attempts.is_row_due(row)
        ):
            return row, False
        if problem:
            transitions.transition(row, RefundStatus.ON_HOLD, problem, actor=SYNC_ACTOR)
            return row, True
        # A row first recorded unreadable gets the facts Mirakl now sends.
        for key, value in _item_facts(item, amount).items():
            if getattr(row, key) is None and value is not None:
                setattr(row, key, value)
        _apply_refund(row, evaluate_refund_row(row), SYNC_ACTOR)
        return row, True
    row = StripeRefund(type=refund_type, mirakl_refund_id=item.id, **_item_facts(item, amount))
    if problem:
        transitions.create(row, RefundStatus.ON_HOLD, problem, actor=SYNC_ACTOR)
        return row, True
    decision = evaluate_refund_row(row)
    if decision.charge_id:
        row.transaction_id = decision.charge_id
    transitions.create(row, decision.status, decision.reason, actor=SYNC_ACTOR)
    log.info("refund %s (order %s): %s (%s)", item.id, item.order_id, row.status, row.status_reason)
    return row, True


def _record_unreadable(item: BadItem, refund_type: str) -> None:
    """Refunds Mirakl sent malformed go ON_HOLD with the reason, so the operator sees them
    and the next run reads them again (a row already settled is left alone)."""
    for refund_id, order_id in _unreadable_refund_ids(item):
        reason = REFUND_UNREADABLE % (refund_id, item.reason)
        row = _find_refund(refund_id)
        if row is None:
            row = StripeRefund(
                type=refund_type, mirakl_refund_id=refund_id, mirakl_order_id=order_id
            )
            transitions.create(row, RefundStatus.ON_HOLD, reason, actor=SYNC_ACTOR)
        elif row.status in RETRIABLE_REFUND:
            transitions.transition(row, RefundStatus.ON_HOLD, reason, actor=SYNC_ACTOR)
    db.session.commit()


def _unreadable_refund_ids(item: BadItem) -> list[tuple[str, str | None]]:
    """(refund id, order id) of a malformed SPA12 refund, or of every refund entry that can
    be made out in a malformed PA12 order."""
    raw = item.raw
    if item.code != "PA12":
        return [(item.mirakl_id, guess_id(raw, "order_id"))] if item.mirakl_id else []
    found: list[tuple[str, str | None]] = []
    lines = raw.get("order_lines") if isinstance(raw, Mapping) else None
    for line in _entries(lines.get("order_line") if isinstance(lines, Mapping) else None):
        refunds = line.get("refunds")
        for entry in _entries(refunds.get("refund") if isinstance(refunds, Mapping) else None):
            refund_id = guess_id(entry, "id")
            if refund_id and all(refund_id != known for known, _ in found):
                found.append((refund_id, item.mirakl_id))
    return found


def _entries(value: Any) -> list[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [i for i in items if isinstance(i, Mapping)]


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
    if decision.status == RefundStatus.PENDING:
        fields["attempted_at"] = None
    transitions.transition(row, decision.status, decision.reason, actor=actor, **fields)


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


def requeue_unvalidated_refunds() -> dict[str, int]:
    """FAILED rows already refunded on Stripe whose Mirakl validation failed, and which
    PA12/SPA12 no longer list (Mirakl may have taken a PA02 that timed out): PENDING again
    once due, so the money job validates them (an already-validated refund then counts as
    done). Rows Mirakl still lists were re-evaluated by the sync just before."""
    rows = db.session.execute(
        select(StripeRefund).where(
            StripeRefund.status == RefundStatus.FAILED,
            StripeRefund.stripe_refund_id.is_not(None),
            StripeRefund.mirakl_validation_time.is_(None),
            attempts.is_due(StripeRefund, RefundStatus.FAILED),
        )
    ).scalars()
    count = 0
    for row in rows:
        transitions.transition(
            row, RefundStatus.PENDING, "To validate on Mirakl again", actor=SYNC_ACTOR
        )
        count += 1
    db.session.commit()
    return {"to validate again": count} if count else {}


def retry_refunds(ids: Iterable[int], *, actor: str) -> list[int]:
    """Re-evaluate FAILED/ON_HOLD refund rows; return the ids now PENDING (to dispatch)."""
    ready: list[int] = []
    for row_id in ids:
        row = db.session.get(StripeRefund, row_id)
        if row is None or row.status not in RETRIABLE_REFUND:
            continue
        _apply_refund(row, evaluate_refund_row(row), actor)
        db.session.commit()
        if row.status == RefundStatus.PENDING:
            ready.append(row.id)
    return ready
