"""Open reconciliation findings summed up for the daily digest (database reads only).

Apart from ``findings`` so that the digest (``notify.alerts``) does not import the outbox
through it: the outbox imports the alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import ReconciliationFinding


@dataclass(frozen=True)
class OpenSummary:
    """Open findings for the digest: count per class, total per currency (both sides)."""

    counts: dict[str, int]
    totals: dict[str, tuple[int, int]]  # currency → (our amounts, their amounts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def summarize_open_findings() -> OpenSummary:
    """Counts per class and amount totals per currency of the open findings (two queries)."""
    open_ = ReconciliationFinding.resolved_at.is_(None)
    counts = dict(
        db.session.execute(
            select(ReconciliationFinding.finding_class, func.count())
            .where(open_)
            .group_by(ReconciliationFinding.finding_class)
            .order_by(ReconciliationFinding.finding_class)
        ).all()
    )
    totals = {
        currency or "?": (int(ours or 0), int(theirs or 0))
        for currency, ours, theirs in db.session.execute(
            select(
                ReconciliationFinding.currency,
                func.sum(ReconciliationFinding.our_amount),
                func.sum(ReconciliationFinding.their_amount),
            )
            .where(open_)
            .group_by(ReconciliationFinding.currency)
            .order_by(ReconciliationFinding.currency)
        ).all()
    }
    return OpenSummary(counts=counts, totals=totals)
