"""One reconciliation run's state, and our rows read as plain rows 100 at a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AccountMapping, StripePayout, StripeRefund, StripeTransfer
from webapp.services.reconcile import facts
from webapp.services.reconcile.findings import record_findings
from webapp.services.reconcile.rules import Finding

PAGE = 100  # Stripe objects, rows or Mirakl items compared per step
LIST_MARGIN = timedelta(hours=1)  # Stripe objects are listed this much around the window
MAX_PRINTED = 50  # findings of a run kept for its summary lines


class SeenIds:
    """Which of our row ids a Stripe list showed: one bit per id, so 1/8 byte per row."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def add(self, row_id: int) -> None:
        byte = row_id >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits)))
        self.bits[byte] |= 1 << (row_id & 7)

    def __contains__(self, row_id: int) -> bool:
        byte = row_id >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (row_id & 7)))


@dataclass
class Run:
    """One reconciliation run: its window, what it saw, what it found."""

    since: datetime
    until: datetime
    token: str
    now: datetime = field(default_factory=utcnow)
    examined: Counter = field(default_factory=Counter)  # operation → objects or rows compared
    found: Counter = field(default_factory=Counter)  # class → findings this run
    new: int = 0
    printed: list[Finding] = field(default_factory=list)
    seen_transfers: SeenIds = field(default_factory=SeenIds)
    seen_refunds: SeenIds = field(default_factory=SeenIds)
    seen_payouts: SeenIds = field(default_factory=SeenIds)

    @property
    def list_gte(self) -> int:
        return facts.to_timestamp(self.since - LIST_MARGIN)

    @property
    def list_lte(self) -> int:
        return facts.to_timestamp(self.until + LIST_MARGIN)

    def record(self, findings: Iterable[Finding | None]) -> None:
        """Store one step's findings (Nones are agreements)."""
        kept = [finding for finding in findings if finding is not None]
        for finding in kept:
            self.found[finding.finding_class] += 1
            if len(self.printed) < MAX_PRINTED:
                self.printed.append(finding)
        self.new += record_findings(kept, run=self.token, now=self.now)


# ---------------------------------------------------------------- our rows, by batch


# Plain rows, not ORM objects: ORM instances are freed only by the cyclic garbage collector,
# which let a 20,000-row run hold several thousand dead ones at its peak.
TRANSFER_COLUMNS = (
    StripeTransfer.id, StripeTransfer.mirakl_id, StripeTransfer.type, StripeTransfer.status,
    StripeTransfer.transfer_id, StripeTransfer.transaction_id, StripeTransfer.amount,
    StripeTransfer.currency, StripeTransfer.creation_datetime,
    StripeTransfer.modification_datetime, AccountMapping.stripe_account_id,
)  # fmt: skip
REFUND_COLUMNS = (
    StripeRefund.id, StripeRefund.mirakl_refund_id, StripeRefund.status,
    StripeRefund.stripe_refund_id, StripeRefund.amount, StripeRefund.currency,
    StripeRefund.creation_datetime, StripeRefund.modification_datetime,
)  # fmt: skip
PAYOUT_COLUMNS = (
    StripePayout.id, StripePayout.mirakl_invoice_id, StripePayout.status, StripePayout.payout_id,
    StripePayout.amount, StripePayout.currency, StripePayout.creation_datetime,
    StripePayout.modification_datetime, AccountMapping.stripe_account_id,
)  # fmt: skip


def transfer_rows() -> Select:
    """Transfer rows with their account's id, as plain rows."""
    return select(*TRANSFER_COLUMNS).outerjoin(
        AccountMapping, StripeTransfer.account_mapping_id == AccountMapping.id
    )


def refund_rows() -> Select:
    return select(*REFUND_COLUMNS)


def payout_rows() -> Select:
    """Payout rows with their account's id, as plain rows."""
    return select(*PAYOUT_COLUMNS).outerjoin(
        AccountMapping, StripePayout.account_mapping_id == AccountMapping.id
    )


def transfers_where(*conditions: Any) -> list[Any]:
    return list(db.session.execute(transfer_rows().where(*conditions)).all())


def index_by(rows: Iterable[Any], attr: str) -> dict[Any, Any]:
    return {getattr(row, attr): row for row in rows if getattr(row, attr)}
