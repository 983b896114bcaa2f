"""Operator decisions on failed money rows: retry, abort, ignore (the console calls these).

A retry hands FAILED and ON_HOLD rows back to their workflow, which re-evaluates each one
with today's facts (shop onboarded now? amount still right?) and moves the rows that can
go now to PENDING; those are queued as money jobs in RQ. A CREATED row is never retried:
its money already moved. Abort and ignore are final and keep the operator's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import RedisError
from sqlalchemy import select

from webapp.errors import ConnectorError, IllegalTransition
from webapp.extensions import db
from webapp.models import (
    INVOICE_TRANSFER_TYPES,
    ORDER_TRANSFER_TYPES,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.dispatch.money_jobs import dispatch
from webapp.services.ledger import transitions
from webapp.services.payouts.sync import retry_invoice_transfers, retry_payouts
from webapp.services.refunds.reversal_sync import retry_reversals
from webapp.services.refunds.sync import retry_refunds
from webapp.services.split.sync import retry_transfers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """One kind of money row the console acts on."""

    model: type
    statuses: Any  # the status enum
    operation: str  # money job name: a key of ``money_jobs.EXECUTORS``


KINDS: dict[str, Kind] = {
    "transfer": Kind(StripeTransfer, TransferStatus, "transfer"),
    "refund": Kind(StripeRefund, RefundStatus, "refund"),
    "payout": Kind(StripePayout, PayoutStatus, "payout"),
}
# Workflow retry functions: ``(ids, *, actor) -> ids now PENDING``.
RetryFunction = Callable[..., list[int]]
ORDER_TRANSFERS: RetryFunction = retry_transfers
REFUND_REVERSALS: RetryFunction = retry_reversals
INVOICE_TRANSFERS: RetryFunction = retry_invoice_transfers
REFUNDS: RetryFunction = retry_refunds
PAYOUTS: RetryFunction = retry_payouts


@dataclass(frozen=True)
class RetryOutcome:
    """``queued``: rows now PENDING and queued; ``unchanged``: row id → why not;
    ``not_queued``: rows now PENDING that could not be queued (the next job run takes them)."""

    queued: int
    unchanged: dict[int, str]
    not_queued: tuple[int, ...] = ()


@dataclass(frozen=True)
class DecisionOutcome:
    """Result of abort/ignore: ids changed, and row id → why not for the others."""

    changed: list[int] = field(default_factory=list)
    unchanged: dict[int, str] = field(default_factory=dict)


def get_kind(kind: str) -> Kind:
    """The ``Kind`` of ``transfer``, ``refund`` or ``payout``.

    Raises:
        ValueError: unknown kind.
    """
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}: transfer, refund or payout") from None


def retry_target(kind: str, row: Any) -> RetryFunction:
    """The workflow function that re-evaluates ``row``."""
    if kind == "refund":
        return REFUNDS
    if kind == "payout":
        return PAYOUTS
    if row.type == TransferType.REFUND:
        return REFUND_REVERSALS
    if row.type in INVOICE_TRANSFER_TYPES:
        return INVOICE_TRANSFERS
    if row.type in ORDER_TRANSFER_TYPES:
        return ORDER_TRANSFERS
    raise ValueError(f"transfer {row.id}: unknown type {row.type}")


def refusal(kind: Kind, row: Any | None, row_id: int) -> str | None:
    """Why the row cannot be retried (None when it can)."""
    if row is None:
        return f"{kind.operation} {row_id} doesn't exist"
    status = kind.statuses(row.status)
    if status == kind.statuses.CREATED:
        return f"already {status}: its money moved, it cannot be retried"
    if status not in (kind.statuses.FAILED, kind.statuses.ON_HOLD):
        return f"{status}: only FAILED or ON_HOLD rows can be retried"
    return None


def _load(kind: Kind, ids: Sequence[int]) -> dict[int, Any]:
    wanted = sorted({int(i) for i in ids})
    rows = db.session.execute(select(kind.model).where(kind.model.id.in_(wanted))).scalars()
    found = {row.id: row for row in rows}
    return {row_id: found.get(row_id) for row_id in wanted}


def retry(kind: str, ids: Sequence[int], *, actor: str) -> RetryOutcome:
    """Re-evaluate FAILED/ON_HOLD rows through their workflow and queue the PENDING ones."""
    spec = get_kind(kind)
    unchanged: dict[int, str] = {}
    groups: dict[RetryFunction, list[int]] = {}
    for row_id, row in _load(spec, ids).items():
        reason = refusal(spec, row, row_id)
        if reason:
            unchanged[row_id] = reason
        else:
            groups.setdefault(retry_target(kind, row), []).append(row_id)
    pending: list[int] = []
    for func, group in groups.items():
        pending += _run_workflow(func, group, actor, unchanged)
    db.session.expire_all()
    for row_id in sorted(set(sum(groups.values(), [])) - set(pending) - set(unchanged)):
        row = db.session.get(spec.model, row_id)
        unchanged[row_id] = f"still {row.status}: {row.status_reason or 'no reason given'}"
    return _queue(spec, sorted(set(pending)), unchanged)


def _run_workflow(
    func: RetryFunction, ids: list[int], actor: str, unchanged: dict[int, str]
) -> list[int]:
    try:
        pending = [int(i) for i in func(ids, actor=actor)]
    except ConnectorError as exc:
        db.session.rollback()
        for row_id in ids:
            unchanged[row_id] = f"not retried: {exc}"
        return []
    db.session.commit()
    log.info(
        "%s.%s: %s of %s rows now pending (by %s)",
        func.__module__,
        func.__name__,
        len(pending),
        len(ids),
        actor,
    )
    return pending


def _queue(spec: Kind, pending: list[int], unchanged: dict[int, str]) -> RetryOutcome:
    if not pending:
        return RetryOutcome(0, unchanged)
    try:
        queued = dispatch(spec.operation, pending, inline=False)
    except RedisError as exc:
        db.session.rollback()
        log.error("%s %s: not queued, Redis unavailable: %s", spec.operation, pending, exc)
        return RetryOutcome(0, unchanged, tuple(pending))
    return RetryOutcome(queued, unchanged)


def abort_rows(kind: str, ids: Sequence[int], reason: str, *, actor: str) -> DecisionOutcome:
    """Move FAILED/ON_HOLD rows to ABORTED: the operator decided not to pay them."""
    spec = get_kind(kind)
    return _decide(spec, ids, spec.statuses.ABORTED, reason, actor)


def ignore_rows(kind: str, ids: Sequence[int], reason: str, *, actor: str) -> DecisionOutcome:
    """Move FAILED/ON_HOLD transfers to TRANSFER_IGNORED (transfers only)."""
    spec = get_kind(kind)
    if kind != "transfer":
        return DecisionOutcome(
            [], {int(i): f"only transfers can be ignored, not a {kind}" for i in ids}
        )
    return _decide(spec, ids, TransferStatus.IGNORED, reason, actor)


def _decide(spec: Kind, ids: Sequence[int], to: Any, reason: str, actor: str) -> DecisionOutcome:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValueError("a reason is required")
    outcome = DecisionOutcome()
    for row_id, row in _load(spec, ids).items():
        why = refusal(spec, row, row_id)
        if why:
            outcome.unchanged[row_id] = why.replace("retried", "changed")
            continue
        try:
            won = transitions.transition(row, to, f"{reason} (by {actor})", actor=actor)
        except IllegalTransition as exc:
            won, why = False, str(exc)
        if won:
            outcome.changed.append(row_id)
        else:
            outcome.unchanged[row_id] = why or f"changed meanwhile, now {row.status}"
    db.session.commit()
    return outcome
