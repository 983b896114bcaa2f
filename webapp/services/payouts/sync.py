"""Seller settlement orchestration (docs/payouts.md): IV01 invoices → StripeTransfer and
StripePayout rows.

Gathers invoices through the Mirakl client, evaluates them with the pure functions of
``payouts`` and writes rows through ``transitions``. Public: ``apply_invoice``,
``apply_invoice_transfer``, ``apply_payout``, ``record_unreadable_invoice``, ``sync_invoices``,
``reevaluate``, ``sync_backlog``, ``retry_invoice_transfers``, ``retry_payouts``.
Transfers are executed by ``ledger/transfer_job.py``, payouts by ``payouts/money_job.py``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from webapp.errors import MiraklDataError
from webapp.extensions import db
from webapp.models import (
    INVOICE_TRANSFER_TYPES,
    AccountMapping,
    PayoutStatus,
    StripePayout,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_mirakl
from webapp.services.ledger import attempts, checkpoints, transitions
from webapp.services.mirakl.fields import opt_date, opt_int
from webapp.services.mirakl.types import BadItem, Invoice
from webapp.services.payouts.rules import (
    CHECKPOINT,
    JOB_ACTOR,
    REASON_NOT_RETURNED,
    REASON_UNREADABLE,
    RETRIABLE_PAYOUT,
    RETRIABLE_TRANSFER,
    Decision,
    evaluate_invoice_transfer,
    evaluate_payout,
    invoice_transfer_values,
    is_later,
    mirakl_date,
    newest_invoice,
)

log = logging.getLogger(__name__)


def _mappings(shop_ids: Iterable[int | None]) -> dict[int, AccountMapping]:
    wanted = {s for s in shop_ids if s}
    if not wanted:
        return {}
    rows = db.session.execute(
        select(AccountMapping).where(AccountMapping.mirakl_shop_id.in_(wanted))
    ).scalars()
    return {m.mirakl_shop_id: m for m in rows}


def _save(row: Any, decision: Decision, actor: str, fields: dict[str, Any]) -> str:
    """Create the row, or move an existing one; return its status."""
    if row.id is None:
        for key, value in fields.items():
            setattr(row, key, value)
        row.amount = decision.amount
        with db.session.begin_nested():
            transitions.create(row, decision.status, decision.reason, actor=actor)
    else:
        transitions.transition(
            row, decision.status, decision.reason, actor=actor, amount=decision.amount, **fields
        )
    return row.status


def apply_invoice_transfer(
    invoice: Invoice,
    type_: TransferType,
    value: Decimal,
    row: StripeTransfer | None,
    mapping: AccountMapping | None,
    actor: str,
) -> str | None:
    """Create or re-evaluate one invoice transfer; None when the row is final already."""
    if row is not None and row.status not in RETRIABLE_TRANSFER:
        return None
    decision = evaluate_invoice_transfer(
        value,
        invoice.currency,
        invoice.shop_id,
        has_account=mapping is not None,
        transfer_id=row.transfer_id if row else None,
    )
    fields = {
        "account_mapping_id": mapping.id if mapping else None,
        "currency": invoice.currency,
        "mirakl_created_date": invoice.created_date,
        "mirakl_shop_id": invoice.shop_id,
    }
    row = row or StripeTransfer(mirakl_id=str(invoice.id), type=type_)
    return _save(row, decision, actor, fields)


def apply_payout(
    invoice: Invoice, row: StripePayout | None, mapping: AccountMapping | None, actor: str
) -> str | None:
    """Create or re-evaluate the payout of one invoice; None when the row is final already."""
    if row is not None and row.status not in RETRIABLE_PAYOUT:
        return None
    decision = evaluate_payout(
        invoice.amount_transferred,
        invoice.currency,
        invoice.shop_id,
        has_account=mapping is not None,
        payouts_enabled=bool(mapping and mapping.payout_enabled),
        payout_id=row.payout_id if row else None,
        status=row.status if row else None,
    )
    fields: dict[str, Any] = {
        "account_mapping_id": mapping.id if mapping else None,
        "currency": invoice.currency,
        "mirakl_created_date": invoice.created_date,
        "mirakl_shop_id": invoice.shop_id,
    }
    if row is not None and decision.status != PayoutStatus.CREATED:
        fields["payout_id"] = None  # a failed payout is paid again by a new one
    row = row or StripePayout(mirakl_invoice_id=invoice.id)
    return _save(row, decision, actor, fields)


def _invoice_rows(invoice_ids: Iterable[int]) -> tuple[dict, dict]:
    ids = {int(i) for i in invoice_ids}
    transfers = db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.type.in_(INVOICE_TRANSFER_TYPES),
            StripeTransfer.mirakl_id.in_([str(i) for i in ids]),
        )
    ).scalars()
    payouts = db.session.execute(
        select(StripePayout).where(StripePayout.mirakl_invoice_id.in_(ids))
    ).scalars()
    return (
        {(t.type, t.mirakl_id): t for t in transfers},
        {p.mirakl_invoice_id: p for p in payouts},
    )


def apply_invoice(invoice: Invoice, actor: str = JOB_ACTOR) -> list[str]:
    """Create or re-evaluate the three transfers and the payout of one invoice (committed)."""
    transfers, payouts = _invoice_rows([invoice.id])
    mapping = _mappings([invoice.shop_id]).get(invoice.shop_id or 0)
    statuses = [
        apply_invoice_transfer(
            invoice, type_, value, transfers.get((type_, str(invoice.id))), mapping, actor
        )
        for type_, value in invoice_transfer_values(invoice)
    ]
    statuses.append(apply_payout(invoice, payouts.get(invoice.id), mapping, actor))
    db.session.commit()
    return [s for s in statuses if s is not None]


def record_unreadable_invoice(item: BadItem, actor: str = JOB_ACTOR) -> str | None:
    """An invoice Mirakl sent malformed: its payout row goes ON_HOLD with the reason, so the
    operator sees it and the backlog reads it again."""
    try:
        invoice_id = int(item.mirakl_id or "")
    except ValueError:
        return None
    row = db.session.execute(
        select(StripePayout).where(StripePayout.mirakl_invoice_id == invoice_id)
    ).scalar_one_or_none()
    if row is not None and row.status not in RETRIABLE_PAYOUT:
        return None
    reason = REASON_UNREADABLE % (invoice_id, item.reason)
    if row is None:
        row = StripePayout(mirakl_invoice_id=invoice_id, **_guess_facts(item.raw))
        with db.session.begin_nested():
            transitions.create(row, PayoutStatus.ON_HOLD, reason, actor=actor)
    else:
        transitions.transition(row, PayoutStatus.ON_HOLD, reason, actor=actor)
    db.session.commit()
    return row.status


def _guess_facts(raw: Any) -> dict[str, Any]:
    """Shop and date of a malformed invoice when they can be read, to find it again."""
    facts: dict[str, Any] = {}
    for key, read in (("mirakl_shop_id", _shop_of), ("mirakl_created_date", _date_of)):
        try:
            facts[key] = read(raw)
        except MiraklDataError:
            facts[key] = None
    return facts


def _shop_of(raw: Any) -> int | None:
    return opt_int(raw, "shop_id")


def _date_of(raw: Any) -> datetime | None:
    return opt_date(raw, "date_created")[0]


def _apply_items(items: Iterable[Invoice | BadItem], actor: str, counts: Counter) -> list[Invoice]:
    """Apply each invoice in its own transaction; one bad invoice never stops the others."""
    stored: list[Invoice] = []
    for item in items:
        counts["fetched"] += 1
        try:
            if isinstance(item, BadItem):
                log.warning("invoice %s: unreadable: %s", item.mirakl_id, item.reason)
                counts["unreadable"] += 1
                status = record_unreadable_invoice(item, actor)
                counts.update([status] if status else [])
                continue
            counts.update(apply_invoice(item, actor))
            stored.append(item)
        except Exception:  # noqa: BLE001 - per-item boundary
            db.session.rollback()
            counts["errors"] += 1
            log.exception("invoice %s: could not be recorded", getattr(item, "id", item))
    return stored


def sync_invoices(shop_id: int | None = None) -> dict[str, int]:
    """New invoices since the settlement checkpoint (all pages), or every invoice of one shop.

    With ``shop_id`` the checkpoint is neither read nor moved. Otherwise the new checkpoint is
    the newest creation date among the invoices actually stored (Mirakl's order is not
    trusted); it does not move when nothing was stored.

    Raises:
        MiraklUnavailable: IV01 could not be read; nothing is checkpointed.
    """
    mirakl = get_mirakl()
    counts: Counter = Counter()
    if shop_id is not None:
        _apply_items(mirakl.list_invoices(shop_id=shop_id), JOB_ACTOR, counts)
        return dict(counts)
    since = checkpoints.get_checkpoint(CHECKPOINT)
    db.session.commit()
    stored = _apply_items(mirakl.list_invoices(start_date=since), JOB_ACTOR, counts)
    newest = newest_invoice(stored)
    if newest is not None and is_later(newest.created_date, since):
        checkpoints.set_checkpoint(CHECKPOINT, newest.created_raw)
        db.session.commit()
        log.info("invoices: checkpoint moved to %s", newest.created_raw)
    return dict(counts)


def _fetch_invoices(rows: list[Any]) -> dict[str, Invoice | BadItem]:
    """The invoices of backlog rows: from the earliest stored date, per shop for undated
    rows, everything when neither is known."""
    mirakl = get_mirakl()
    wanted = {_invoice_key(r) for r in rows}
    dates = [r.mirakl_created_date for r in rows if r.mirakl_created_date]
    undated = [r for r in rows if not r.mirakl_created_date]
    queries: list[dict[str, Any]] = []
    if any(not r.mirakl_shop_id for r in undated):
        queries = [{}]
    else:
        if dates:
            queries.append({"start_date": mirakl_date(min(dates))})
        queries += [{"shop_id": s} for s in sorted({r.mirakl_shop_id for r in undated})]
    found: dict[str, Invoice | BadItem] = {}
    for query in queries:
        for item in mirakl.list_invoices(**query):
            key = str(item.id) if isinstance(item, Invoice) else str(item.mirakl_id)
            if key in wanted and not isinstance(found.get(key), Invoice):
                found[key] = item
    return found


def _invoice_key(row: StripeTransfer | StripePayout) -> str:
    """The invoice id of a row, as text (transfers keep it in ``mirakl_id``)."""
    return str(row.mirakl_invoice_id) if isinstance(row, StripePayout) else row.mirakl_id


def reevaluate(rows: list[StripeTransfer | StripePayout], actor: str) -> Counter:
    """Evaluate FAILED/ON_HOLD invoice rows again from their invoices (one IV01 pass)."""
    counts: Counter = Counter()
    if not rows:
        return counts
    invoices = _fetch_invoices(rows)
    counts["fetched"] = len(invoices)
    for row in rows:
        try:
            status = _reevaluate_row(row, invoices.get(_invoice_key(row)), actor)
            db.session.commit()
            counts.update([status] if status else [])
        except Exception:  # noqa: BLE001 - per-item boundary
            db.session.rollback()
            counts["errors"] += 1
            log.exception(
                "%s %s: could not be re-evaluated", transitions.operation_name(row), row.id
            )
    return counts


def _reevaluate_row(row: Any, invoice: Invoice | BadItem | None, actor: str) -> str | None:
    db.session.refresh(row)
    retriable = RETRIABLE_PAYOUT if isinstance(row, StripePayout) else RETRIABLE_TRANSFER
    if row.status not in retriable:
        return None
    if invoice is None or isinstance(invoice, BadItem):
        invoice_id = _invoice_key(row)
        reason = (
            REASON_NOT_RETURNED % invoice_id
            if invoice is None
            else REASON_UNREADABLE % (invoice_id, invoice.reason)
        )
        on_hold = PayoutStatus.ON_HOLD if isinstance(row, StripePayout) else TransferStatus.ON_HOLD
        transitions.transition(row, on_hold, reason, actor=actor)
        log.warning("%s %s: %s", transitions.operation_name(row), row.id, reason)
        return row.status
    mapping = _mappings([invoice.shop_id]).get(invoice.shop_id or 0)
    if isinstance(row, StripePayout):
        return apply_payout(invoice, row, mapping, actor)
    value = dict(invoice_transfer_values(invoice))[TransferType(row.type)]
    return apply_invoice_transfer(invoice, TransferType(row.type), value, row, mapping, actor)


def _retriable_transfers(ids: Iterable[int] | None = None) -> list[StripeTransfer]:
    query = select(StripeTransfer).where(
        StripeTransfer.type.in_(INVOICE_TRANSFER_TYPES),
        StripeTransfer.status.in_(RETRIABLE_TRANSFER),
    )
    if ids is not None:
        query = query.where(StripeTransfer.id.in_(list(ids)))
    else:  # an automatic run leaves failed rows alone while their retry backoff runs
        query = query.where(attempts.is_due(StripeTransfer, TransferStatus.FAILED))
    return list(db.session.execute(query.order_by(StripeTransfer.id)).scalars())


def _retriable_payouts(ids: Iterable[int] | None = None) -> list[StripePayout]:
    query = select(StripePayout).where(StripePayout.status.in_(RETRIABLE_PAYOUT))
    if ids is not None:
        query = query.where(StripePayout.id.in_(list(ids)))
    else:
        query = query.where(attempts.is_due(StripePayout, PayoutStatus.FAILED))
    return list(db.session.execute(query.order_by(StripePayout.id)).scalars())


def sync_backlog() -> dict[str, int]:
    """Re-evaluate every ON_HOLD/FAILED payout and invoice transfer from its invoice.

    A payout on hold because the account could not be paid out becomes PENDING here once
    ``account.updated`` enabled payouts; a row whose invoice Mirakl no longer returns gets
    that reason and the run goes on.

    Raises:
        MiraklUnavailable: IV01 could not be read.
    """
    rows: list[Any] = [*_retriable_transfers(), *_retriable_payouts()]
    return dict(reevaluate(rows, JOB_ACTOR))


def retry_invoice_transfers(ids: Iterable[int], *, actor: str) -> list[int]:
    """Console retry: re-evaluate these FAILED/ON_HOLD invoice transfers; return the PENDING ids.

    Raises:
        MiraklUnavailable: IV01 could not be read.
    """
    rows = _retriable_transfers(ids)
    reevaluate(rows, actor)
    return [r.id for r in rows if r.status == TransferStatus.PENDING]


def retry_payouts(ids: Iterable[int], *, actor: str) -> list[int]:
    """Console retry: re-evaluate these FAILED/ON_HOLD payouts; return the PENDING ids.

    Raises:
        MiraklUnavailable: IV01 could not be read.
    """
    rows = _retriable_payouts(ids)
    reevaluate(rows, actor)
    return [r.id for r in rows if r.status == PayoutStatus.PENDING]
