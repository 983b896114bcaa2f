"""The queries behind the timeline: which rows a search names, then every row of their story.

Each lookup is by an indexed column (a million money rows must answer in well under a
second); stories are bounded by ``MAX_ROWS`` per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select

from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    AuditEvent,
    Notification,
    OperationEvent,
    PaymentMapping,
    StripePayout,
    StripeRefund,
    StripeTransfer,
)
from webapp.services.timeline.rules import Facts, Query

MAX_ROWS = 200  # rows of one kind in one story
NOTIFIED_OPERATIONS = {
    "transfer": "transfer.failed", "refund": "refund.failed", "payout": "payout.failed",
}  # fmt: skip


@dataclass
class Subject:
    """The Mirakl ids a story is about (commercial orders, orders, refunds, invoices)."""

    commercial_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    refund_ids: set[str] = field(default_factory=set)
    invoice_ids: set[int] = field(default_factory=set)

    def is_empty(self) -> bool:
        return not (self.commercial_ids or self.order_ids or self.refund_ids or self.invoice_ids)


def _one(statement):  # first row or None
    return db.session.execute(statement.limit(1)).scalars().first()


def find_shop(query: Query) -> AccountMapping | None:
    """The shop a search names: ``acct_…`` or a Mirakl shop id."""
    if query.prefix == "acct_":
        return _one(select(AccountMapping).where(AccountMapping.stripe_account_id == query.value))
    if query.kind == "number" and len(query.value) < 10:
        return _one(select(AccountMapping).where(AccountMapping.mirakl_shop_id == int(query.value)))
    return None


def _add_transfer(subject: Subject, row: StripeTransfer) -> None:
    if row.type == "TRANSFER_REFUND":
        subject.refund_ids.add(row.mirakl_id)
    elif row.type in ("TRANSFER_PRODUCT_ORDER", "TRANSFER_SERVICE_ORDER"):
        subject.order_ids.add(row.mirakl_id)
    elif row.mirakl_id.isdecimal():
        subject.invoice_ids.add(int(row.mirakl_id))
    if row.transfer_group:
        subject.commercial_ids.add(row.transfer_group)


def _add_refund(subject: Subject, row: StripeRefund) -> None:
    subject.refund_ids.add(row.mirakl_refund_id)
    if row.mirakl_order_id:
        subject.order_ids.add(row.mirakl_order_id)
    if row.mirakl_commercial_order_id:
        subject.commercial_ids.add(row.mirakl_commercial_order_id)


def find_subject(query: Query) -> Subject:
    """The Mirakl ids a search names (empty when it names nothing we know)."""
    subject = Subject()
    value = query.value
    if query.kind == "stripe":
        _stripe_subject(subject, query)
        return subject
    for row in db.session.execute(
        select(StripeTransfer).where(StripeTransfer.mirakl_id == value).limit(MAX_ROWS)
    ).scalars():
        _add_transfer(subject, row)
    for row in db.session.execute(
        select(StripeRefund)
        .where(or_(StripeRefund.mirakl_refund_id == value, StripeRefund.mirakl_order_id == value))
        .limit(MAX_ROWS)
    ).scalars():
        _add_refund(subject, row)
    if _one(select(PaymentMapping).where(PaymentMapping.mirakl_commercial_order_id == value)):
        subject.commercial_ids.add(value)
    if _one(select(StripeTransfer).where(StripeTransfer.transfer_group == value)):
        subject.commercial_ids.add(value)
    if query.kind == "number" and len(value) < 10:
        if _one(select(StripePayout).where(StripePayout.mirakl_invoice_id == int(value))):
            subject.invoice_ids.add(int(value))
    return subject


def _stripe_subject(subject: Subject, query: Query) -> None:
    value, prefix = query.value, query.prefix
    if prefix in ("ch_", "py_", "pi_"):
        payment = _one(select(PaymentMapping).where(PaymentMapping.stripe_charge_id == value))
        if payment and payment.mirakl_commercial_order_id:
            subject.commercial_ids.add(payment.mirakl_commercial_order_id)
        for row in db.session.execute(
            select(StripeTransfer).where(StripeTransfer.transaction_id == value).limit(MAX_ROWS)
        ).scalars():
            _add_transfer(subject, row)
        for row in db.session.execute(
            select(StripeRefund).where(StripeRefund.transaction_id == value).limit(MAX_ROWS)
        ).scalars():
            _add_refund(subject, row)
    elif prefix in ("tr_", "trr_"):
        row = _one(select(StripeTransfer).where(StripeTransfer.transfer_id == value))
        if row:
            _add_transfer(subject, row)
    elif prefix == "re_":
        row = _one(select(StripeRefund).where(StripeRefund.stripe_refund_id == value))
        if row:
            _add_refund(subject, row)
    elif prefix == "po_":
        row = _one(select(StripePayout).where(StripePayout.payout_id == value))
        if row:
            subject.invoice_ids.add(row.mirakl_invoice_id)


def _rows(model, *conditions) -> list:
    conditions = [c for c in conditions if c is not None]
    if not conditions:
        return []
    statement = select(model).where(or_(*conditions)).order_by(model.id).limit(MAX_ROWS)
    return list(db.session.execute(statement).scalars())


def gather(subject: Subject) -> Facts:
    """Every row of the subject's story: money rows, their history, notifications, audit."""
    c, o, r = subject.commercial_ids, subject.order_ids, subject.refund_ids
    invoices = {str(i) for i in subject.invoice_ids}
    T, R = StripeTransfer, StripeRefund  # noqa: N806 - short table aliases
    facts = Facts(
        payments=_rows(PaymentMapping, PaymentMapping.mirakl_commercial_order_id.in_(c) if c
                       else None),
        transfers=_rows(T, T.mirakl_id.in_(o | r | invoices) if o | r | invoices else None,
                        T.transfer_group.in_(c) if c else None),
        refunds=_rows(R, R.mirakl_refund_id.in_(r) if r else None,
                      R.mirakl_order_id.in_(o) if o else None,
                      R.mirakl_commercial_order_id.in_(c) if c else None),
        payouts=_rows(StripePayout, StripePayout.mirakl_invoice_id.in_(subject.invoice_ids)
                      if subject.invoice_ids else None),
    )  # fmt: skip
    keys = [("payment", p.id) for p in facts.payments] + [
        (op, row.id)
        for op, group in (("transfer", facts.transfers), ("refund", facts.refunds),
                          ("payout", facts.payouts))
        for row in group
    ]  # fmt: skip
    facts.events = _events(keys)
    facts.notifications = _notifications(keys)
    facts.audits = _audits(keys)
    return facts


def _events(keys: list[tuple[str, int]]) -> list[OperationEvent]:
    found: list[OperationEvent] = []
    for operation in {op for op, _ in keys}:
        ids = [i for op, i in keys if op == operation]
        found += db.session.execute(
            select(OperationEvent)
            .where(OperationEvent.operation == operation, OperationEvent.operation_id.in_(ids))
            .order_by(OperationEvent.id)
            .limit(MAX_ROWS * 5)
        ).scalars()
    return found


def _notifications(keys: list[tuple[str, int]]) -> list[Notification]:
    patterns = [
        Notification.dedupe_key.like(f"{NOTIFIED_OPERATIONS[op]}:{i}:%")
        for op, i in keys
        if op in NOTIFIED_OPERATIONS
    ][:MAX_ROWS]
    return _rows(Notification, *patterns) if patterns else []


def _audits(keys: list[tuple[str, int]]) -> list[AuditEvent]:
    conditions = [
        (AuditEvent.target_type == op) & (AuditEvent.target_id == str(i)) for op, i in keys
    ][:MAX_ROWS]
    return _rows(AuditEvent, *conditions) if conditions else []
