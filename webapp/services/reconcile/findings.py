"""Stored reconciliation findings: record what a run saw, resolve what it no longer sees.

One row per disagreement (``ReconciliationFinding``), named by ``Finding.key``. A new
finding (or one that comes back after being resolved) of a class in ``NOTIFIED_CLASSES``
adds a ``reconciliation.mismatch`` notification to the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from webapp.extensions import db
from webapp.models import FindingClass, ReconciliationFinding
from webapp.services.ledger.notices import record_notification
from webapp.services.reconcile.rules import ACTIONS, NOTIFIED_CLASSES, Finding

MISMATCH_TYPE = "reconciliation.mismatch"
DEFAULT_LOOKBACK = timedelta(days=2)


def mismatch_payload(row: ReconciliationFinding) -> dict[str, Any]:
    """The ``reconciliation.mismatch`` notification body (camelCase, like the reference's)."""
    return {
        "internalId": row.id,
        "class": row.finding_class,
        "operation": row.operation,
        "operationId": row.operation_id,
        "miraklId": row.mirakl_id,
        "stripeId": row.stripe_id,
        "stripeAccountId": row.stripe_account_id,
        "ourAmount": row.our_amount,
        "theirAmount": row.their_amount,
        "currency": row.currency,
        "theirCurrency": row.their_currency,
        "detail": row.detail,
        "firstSeenAt": row.first_seen_at.isoformat() + "Z",
        "action": ACTIONS[FindingClass(row.finding_class)],
    }


def default_since(now: datetime) -> datetime:
    """The default window's start: two days ago, or earlier to cover every open finding."""
    oldest = db.session.execute(
        select(func.min(ReconciliationFinding.subject_at)).where(
            ReconciliationFinding.resolved_at.is_(None)
        )
    ).scalar()
    since = now - DEFAULT_LOOKBACK
    return min(since, oldest) if oldest is not None else since


def record_findings(findings: Sequence[Finding], *, run: str, now: datetime) -> int:
    """Store one batch of a run's findings and commit; return how many are new (or back)."""
    if not findings:
        return 0
    unique = {finding.key: finding for finding in findings}
    known = {
        row.finding_key: row
        for row in db.session.execute(
            select(ReconciliationFinding).where(ReconciliationFinding.finding_key.in_(list(unique)))
        ).scalars()
    }
    new = 0
    for key, finding in unique.items():
        row = known.get(key)
        is_new = row is None or row.resolved_at is not None
        if row is None:
            row = ReconciliationFinding(finding_key=key, first_seen_at=now)
            db.session.add(row)
        _copy(row, finding, run=run, now=now)
        if is_new:
            new += 1
            row.first_seen_at = now
            if finding.finding_class in NOTIFIED_CLASSES:
                db.session.flush()
                stamp = now.strftime("%Y%m%dT%H%M%S%f")
                record_notification(
                    MISMATCH_TYPE, mismatch_payload(row), f"{MISMATCH_TYPE}:{row.id}:{stamp}"
                )
    db.session.commit()
    return new


def _copy(row: ReconciliationFinding, finding: Finding, *, run: str, now: datetime) -> None:
    row.finding_class = finding.finding_class
    row.operation = finding.operation
    row.operation_id = finding.operation_id
    row.mirakl_id = finding.mirakl_id
    row.stripe_id = finding.stripe_id
    row.stripe_account_id = finding.stripe_account_id
    row.our_amount = finding.our_amount
    row.their_amount = finding.their_amount
    row.currency = (finding.currency or "")[:3].lower() or None
    row.their_currency = (finding.their_currency or "")[:3].lower() or None
    row.detail = finding.detail[:1024]
    row.subject_at = finding.subject_at
    row.last_seen_at = now
    row.resolved_at = None
    row.last_run = run


def resolve_unseen(*, run: str, since: datetime, until: datetime, now: datetime) -> int:
    """Resolve the open findings of the window that this run did not see again."""
    resolved = db.session.execute(
        update(ReconciliationFinding)
        .where(
            ReconciliationFinding.resolved_at.is_(None),
            ReconciliationFinding.subject_at >= since,
            ReconciliationFinding.subject_at <= until,
            (ReconciliationFinding.last_run != run) | ReconciliationFinding.last_run.is_(None),
        )
        .values(resolved_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return resolved or 0
