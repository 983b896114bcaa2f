"""Reversal orchestration (docs/refunds.md): the seller's share of a refund pulled back from the
order's transfer (``TRANSFER_REFUND`` rows, ``<refundId>_TAX`` too under tax split).

Gathers facts (the order transfer, the Mirakl order, what is left of the Stripe transfer),
evaluates them with ``refunds.evaluate_reversal_source`` / ``evaluate_reversal_amount`` and
writes rows through ``transitions``. Public: ``sync_reversal_backlog``, ``retry_reversals``,
``find_dispatchable_reversals``. The reversals are executed by ``ledger/transfer_job.py``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.errors import (
    MiraklUnavailable,
    StripeOutcomeUnknown,
    StripeRefused,
)
from webapp.extensions import db
from webapp.models import (
    RefundType,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.ledger.minor_units import to_minor
from webapp.services.mirakl import orders
from webapp.services.mirakl.client import TAX_SUFFIX, strip_tax_suffix
from webapp.services.mirakl.types import BadItem, ProductOrder, ServiceOrder
from webapp.services.refunds.rules import (
    ORDER_TRANSFER_TYPE,
    RETRIABLE_TRANSFER,
    SYNC_ACTOR,
    Decision,
    ReversalAmount,
    ReversalSource,
    evaluate_reversal_amount,
    evaluate_reversal_source,
)

log = logging.getLogger(__name__)


def _find_refund(mirakl_refund_id: str) -> StripeRefund | None:
    return db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == mirakl_refund_id)
    ).scalar_one_or_none()


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
        if _find_transfer(TransferType.REFUND, mirakl_id) is not None:
            continue
        row = StripeTransfer(
            mirakl_id=mirakl_id,
            type=TransferType.REFUND,
            currency=refund.currency,
            mirakl_shop_id=refund.mirakl_shop_id,
        )
        decision = evaluate_reversal_source(_reversal_source(row, refund))
        # A row whose amount is still to compute waits for this run's backlog pass.
        status = decision.status if decision else TransferStatus.ON_HOLD
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
                StripeTransfer.type == TransferType.REFUND,
                StripeTransfer.status.in_(RETRIABLE_TRANSFER),
                attempts.is_due(StripeTransfer, TransferStatus.FAILED),
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
                StripeTransfer.type == TransferType.REFUND,
                StripeTransfer.status.in_(RETRIABLE_TRANSFER),
            )
            .order_by(StripeTransfer.id)
        ).scalars()
    )
    _evaluate_reversals(rows, actor)
    return [row.id for row in rows if row.status == TransferStatus.PENDING]


def find_dispatchable_reversals() -> list[int]:
    """PENDING reversal rows with no live claim (new, or whose job was lost)."""
    return attempts.find_dispatchable(
        StripeTransfer,
        TransferStatus.PENDING,
        StripeTransfer.type == TransferType.REFUND,
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
    product = [r.mirakl_order_id for r in refunds if r.type == RefundType.PRODUCT_ORDER]
    service = [r.mirakl_order_id for r in refunds if r.type == RefundType.SERVICE_ORDER]
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
            StripeTransfer.type == TransferType.REFUND,
            StripeTransfer.transaction_id == transfer_id,
            StripeTransfer.status == TransferStatus.PENDING,
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
    if decision.status == TransferStatus.PENDING:
        fields["attempted_at"] = None
    if decision.status == row.status and decision.reason == row.status_reason and not fields:
        return
    transitions.transition(row, decision.status, decision.reason, actor=actor, **fields)
