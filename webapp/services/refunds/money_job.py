"""The refund money job (docs/refunds.md): ``execute_refund`` and its steps.

Claim the PENDING row, refund the charge on Stripe exactly once (``refund_in_stripe``,
looking up the live refund an earlier attempt made with ``find_own_refund``), then validate it
on Mirakl (``validate_on_mirakl``: PA02 / SPA02). Pure rules live in ``refunds``.
"""

from __future__ import annotations

import logging
from typing import Any

from webapp.clock import utcnow
from webapp.errors import (
    MiraklError,
    StripeOutcomeUnknown,
    StripeRefused,
)
from webapp.extensions import db
from webapp.models import (
    RefundStatus,
    RefundType,
    StripeRefund,
)
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.mirakl.types import BadItem
from webapp.services.refunds.rules import (
    DEAD_STRIPE_REFUND,
    JOB_ACTOR,
    NO_PAYMENT,
    REFUND_OPERATION,
    is_no_longer_waiting,
    validation_entry,
)
from webapp.services.stripe.gateway import StripeGateway

log = logging.getLogger(__name__)


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


def execute_refund(refund_id: int) -> None:
    """Refund one PENDING row on Stripe exactly once, then validate it on Mirakl."""
    row = db.session.get(StripeRefund, refund_id)
    if row is None:
        return
    claim = attempts.claim(
        StripeRefund,
        refund_id,
        pending=RefundStatus.PENDING,
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
        transitions.transition(
            row, RefundStatus.ON_HOLD, problem, actor=JOB_ACTOR, attempted_at=None
        )
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
            attempts.record_refusal(row, RefundStatus.FAILED, exc.message, actor=JOB_ACTOR)
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
        attempts.record_refusal(row, RefundStatus.FAILED, reason, actor=JOB_ACTOR)
        return False
    transitions.transition(
        row,
        RefundStatus.PENDING,
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
    is_service = row.type == RefundType.SERVICE_ORDER
    confirm = mirakl.confirm_service_refunds if is_service else mirakl.confirm_refunds
    try:
        error = confirm([validation_entry(row)])[0]
        if error is not None and is_no_longer_waiting(error) and not _is_still_listed(row):
            log.info("refund %s: already validated on Mirakl", row.mirakl_refund_id)
            error = None
    except MiraklError as exc:
        # Mirakl timed out or failed (writes are not resent blindly): FAILED (the operator
        # hears of it through refund.failed), validated again later by process-refund's
        # backlog, never refunded twice since the Stripe refund id is stored.
        _record_validation_failure(row, f"Mirakl validation failed: {exc.message}")
        return
    if error is None:
        attempts.record_success(
            row, RefundStatus.CREATED, actor=JOB_ACTOR, mirakl_validation_time=utcnow()
        )
        log.info("refund %s: validated on Mirakl", row.mirakl_refund_id)
        return
    _record_validation_failure(row, error)


def _record_validation_failure(row: StripeRefund, reason: str) -> None:
    transitions.transition(
        row,
        RefundStatus.FAILED,
        reason,
        actor=JOB_ACTOR,
        attempted_at=None,
        next_attempt_at=utcnow() + attempts.retry_backoff(row.attempt + 1),
    )
    db.session.commit()
    log.warning("refund %s: not validated on Mirakl: %s", row.mirakl_refund_id, reason)


def _is_still_listed(row: StripeRefund) -> bool:
    mirakl = get_mirakl()
    if row.type == RefundType.SERVICE_ORDER:
        items = mirakl.list_service_pending_refunds()
    else:
        items = mirakl.list_pending_refunds()
    return any(not isinstance(item, BadItem) and item.id == row.mirakl_refund_id for item in items)
