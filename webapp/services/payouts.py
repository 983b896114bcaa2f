"""Seller settlement (reference §6): per Mirakl invoice (IV01), three transfers and one payout.

Each invoice gives a payout of ``amount_transferred`` from the seller's Stripe balance to their
bank, a seller → platform transfer for the subscription and for other invoices (fees), and a
platform → seller transfer for other credits. The fees are collected and the credits paid
before the payout of the same invoice is sent, so the payout never spends money that the
platform is about to collect. Transfers are executed by ``transfer_execution`` (operation
``transfer``), payouts by ``execute_payout`` here (operation ``payout``).

Pure evaluation on top (no I/O), orchestration below.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from webapp.errors import MiraklDataError, StripeOutcomeUnknown, StripeRefused
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
from webapp.services import attempts, checkpoints, transitions
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.mirakl_types import BadItem, Invoice, opt_date, opt_int, parse_date
from webapp.services.money import to_minor
from webapp.services.webhooks import WebhookAnswer, event_object

log = logging.getLogger(__name__)

CHECKPOINT = "seller_settlement_checkpoint"
JOB_ACTOR = "process-payout"
MONEY_ACTOR = "money-job"
WEBHOOK_ACTOR = "webhook:payout.failed"
RETRIABLE_TRANSFER = (TransferStatus.FAILED.value, TransferStatus.ON_HOLD.value)
RETRIABLE_PAYOUT = (PayoutStatus.FAILED.value, PayoutStatus.ON_HOLD.value)
CREDIT_TYPES = (TransferType.EXTRA_CREDITS.value,)  # platform → seller
FEE_TYPES = (
    TransferType.SUBSCRIPTION.value,
    TransferType.EXTRA_INVOICES.value,
)  # seller → platform
DEAD_PAYOUT_STATES = ("failed", "canceled")  # Stripe payouts that did not pay the seller

REASON_NO_SHOP = "No shop ID provided"
REASON_NO_ACCOUNT = "Cannot find Stripe account for shop ID %s"
REASON_PAYOUTS_DISABLED = "Payouts are disabled shop ID %s"
REASON_AMOUNT = "Amount must be positive, input was: %d"
REASON_NOT_RETURNED = "Invoice %s is no longer returned by Mirakl (IV01)"
REASON_UNREADABLE = "Invoice %s could not be read from Mirakl: %s"


# ---------------------------------------------------------------- pure evaluation


@dataclass(frozen=True)
class Decision:
    """What a row should become: status, amount in minor units, and why."""

    status: str
    amount: int
    reason: str | None = None


def invoice_transfer_values(invoice: Invoice) -> list[tuple[TransferType, Decimal]]:
    """The invoice's summary totals behind each invoice transfer type (reference §6.1)."""
    return [
        (TransferType.SUBSCRIPTION, invoice.total_subscription_incl_tax),
        (TransferType.EXTRA_INVOICES, invoice.total_other_invoices_incl_tax),
        (TransferType.EXTRA_CREDITS, invoice.total_other_credits_incl_tax),
    ]


def evaluate_invoice_transfer(
    value: Decimal,
    currency: str,
    shop_id: int | None,
    *,
    has_account: bool,
    transfer_id: str | None = None,
) -> Decision:
    """Status of an invoice transfer (subscription, extra invoices, extra credits).

    The amount is the absolute value in minor units: Mirakl sends fees as negative totals and
    the direction comes from the type. Checks, in order:

    1. the Stripe transfer already exists → CREATED;
    2. no shop id on the invoice → ABORTED ``No shop ID provided``;
    3. the shop has no connected account → ON_HOLD ``Cannot find Stripe account for shop ID X``;
    4. amount 0 → ABORTED ``Amount must be positive, input was: 0``;
    5. otherwise PENDING.
    """
    amount = abs(to_minor(value, currency))
    if transfer_id:
        return Decision(TransferStatus.CREATED.value, amount)
    if not shop_id:
        return Decision(TransferStatus.ABORTED.value, amount, REASON_NO_SHOP)
    if not has_account:
        return Decision(TransferStatus.ON_HOLD.value, amount, REASON_NO_ACCOUNT % shop_id)
    if amount == 0:
        return Decision(TransferStatus.ABORTED.value, amount, REASON_AMOUNT % amount)
    return Decision(TransferStatus.PENDING.value, amount)


def evaluate_payout(
    amount_transferred: Decimal,
    currency: str,
    shop_id: int | None,
    *,
    has_account: bool,
    payouts_enabled: bool,
    payout_id: str | None = None,
    status: str | None = None,
) -> Decision:
    """Status of the payout of an invoice's ``amount_transferred`` (no abs). Checks, in order:

    1. the Stripe payout exists and the row is not FAILED/ON_HOLD → CREATED (a payout failed
       at the bank is evaluated again and paid anew);
    2. amount ≤ 0 → ABORTED ``Amount must be positive, input was: N``;
    3. no shop id on the invoice → ABORTED ``No shop ID provided``;
    4. the shop has no connected account → ON_HOLD ``Cannot find Stripe account for shop ID X``;
    5. payouts disabled on the account → ON_HOLD ``Payouts are disabled shop ID X``;
    6. otherwise PENDING.
    """
    amount = to_minor(amount_transferred, currency)
    if payout_id and status not in RETRIABLE_PAYOUT:
        return Decision(PayoutStatus.CREATED.value, amount)
    if amount <= 0:
        return Decision(PayoutStatus.ABORTED.value, amount, REASON_AMOUNT % amount)
    if not shop_id:
        return Decision(PayoutStatus.ABORTED.value, amount, REASON_NO_SHOP)
    if not has_account:
        return Decision(PayoutStatus.ON_HOLD.value, amount, REASON_NO_ACCOUNT % shop_id)
    if not payouts_enabled:
        return Decision(PayoutStatus.ON_HOLD.value, amount, REASON_PAYOUTS_DISABLED % shop_id)
    return Decision(PayoutStatus.PENDING.value, amount)


def payout_failure_reason(payout: dict[str, Any]) -> str:
    """``<failure_code>: <failure_message>`` of a failed Stripe payout, with the defaults."""
    code = payout.get("failure_code") or "unknown_code"
    message = payout.get("failure_message") or "Unknown failure reason"
    return f"{code}: {message}"


def newest_invoice(invoices: Iterable[Invoice]) -> Invoice | None:
    """The invoice with the latest creation date, whatever order Mirakl listed them in."""
    dated = [i for i in invoices if i.created_date is not None]
    return max(dated, key=lambda i: i.created_date, default=None)


def is_later(value: datetime, checkpoint: str | None) -> bool:
    """Whether ``value`` moves the checkpoint forward (an unreadable checkpoint is replaced)."""
    if not checkpoint:
        return True
    try:
        return value > parse_date(checkpoint, CHECKPOINT)
    except MiraklDataError:
        return True


def mirakl_date(value: datetime) -> str:
    """A stored (naive UTC) date as an IV01 ``start_date``, never later than ``value``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- orchestration: rows


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
    row = row or StripeTransfer(mirakl_id=str(invoice.id), type=type_.value)
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
    if row is not None and decision.status != PayoutStatus.CREATED.value:
        fields["payout_id"] = None  # a failed payout is paid again by a new one
    row = row or StripePayout(mirakl_invoice_id=invoice.id)
    return _save(row, decision, actor, fields)


def _invoice_rows(invoice_ids: Iterable[int]) -> tuple[dict, dict]:
    ids = {int(i) for i in invoice_ids}
    transfers = db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.type.in_([t.value for t in INVOICE_TRANSFER_TYPES]),
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
            invoice, type_, value, transfers.get((type_.value, str(invoice.id))), mapping, actor
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


# ---------------------------------------------------------------- orchestration: runs


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
        StripeTransfer.type.in_([t.value for t in INVOICE_TRANSFER_TYPES]),
        StripeTransfer.status.in_(RETRIABLE_TRANSFER),
    )
    if ids is not None:
        query = query.where(StripeTransfer.id.in_(list(ids)))
    return list(db.session.execute(query.order_by(StripeTransfer.id)).scalars())


def _retriable_payouts(ids: Iterable[int] | None = None) -> list[StripePayout]:
    query = select(StripePayout).where(StripePayout.status.in_(RETRIABLE_PAYOUT))
    if ids is not None:
        query = query.where(StripePayout.id.in_(list(ids)))
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
    return [r.id for r in rows if r.status == TransferStatus.PENDING.value]


def retry_payouts(ids: Iterable[int], *, actor: str) -> list[int]:
    """Console retry: re-evaluate these FAILED/ON_HOLD payouts; return the PENDING ids.

    Raises:
        MiraklUnavailable: IV01 could not be read.
    """
    rows = _retriable_payouts(ids)
    reevaluate(rows, actor)
    return [r.id for r in rows if r.status == PayoutStatus.PENDING.value]


# ---------------------------------------------------------------- dispatch order


def find_dispatchable_transfers(shop_id: int | None = None) -> list[list[int]]:
    """PENDING invoice transfers to send (of one shop when given), in two waves: credits
    (platform → seller) first, then fees (seller → platform), so that a credit can fund the
    fees of the same invoice."""
    ids = attempts.find_dispatchable(StripeTransfer, TransferStatus.PENDING.value)
    waves: list[list[int]] = []
    for types in (CREDIT_TYPES, FEE_TYPES):
        query = select(StripeTransfer.id).where(
            StripeTransfer.id.in_(ids), StripeTransfer.type.in_(types)
        )
        if shop_id is not None:
            query = query.where(StripeTransfer.mirakl_shop_id == shop_id)
        waves.append(list(db.session.execute(query.order_by(StripeTransfer.id)).scalars()))
    return waves


def _invoices_with_pending_transfers(invoice_ids: Iterable[int]) -> set[int]:
    keys = [str(i) for i in invoice_ids]
    if not keys:
        return set()
    rows = db.session.execute(
        select(StripeTransfer.mirakl_id).where(
            StripeTransfer.type.in_([t.value for t in INVOICE_TRANSFER_TYPES]),
            StripeTransfer.status == TransferStatus.PENDING.value,
            StripeTransfer.mirakl_id.in_(keys),
        )
    ).scalars()
    return {int(k) for k in rows}


def find_dispatchable_payouts(shop_id: int | None = None) -> tuple[list[int], int]:
    """PENDING payouts to send, and how many wait for their invoice's transfers first.

    A payout goes only once its invoice's fee and credit transfers are no longer PENDING:
    fees are collected and credits paid before the seller's balance is paid out.
    """
    ids = attempts.find_dispatchable(StripePayout, PayoutStatus.PENDING.value)
    if not ids:
        return [], 0
    query = select(StripePayout.id, StripePayout.mirakl_invoice_id).where(StripePayout.id.in_(ids))
    if shop_id is not None:
        query = query.where(StripePayout.mirakl_shop_id == shop_id)
    rows = list(db.session.execute(query.order_by(StripePayout.id)))
    blocked = _invoices_with_pending_transfers(invoice for _, invoice in rows)
    ready = [row_id for row_id, invoice in rows if invoice not in blocked]
    return ready, len(rows) - len(ready)


# ---------------------------------------------------------------- the money job


def find_existing_payout(gateway: Any, account: str, invoice_id: int) -> dict[str, Any] | None:
    """A live payout an earlier attempt may have created for this invoice (by metadata)."""
    for payout in gateway.list_payouts(account):
        metadata = payout.get("metadata") or {}
        if (
            metadata.get("invoiceId") == str(invoice_id)
            and payout.get("status") not in DEAD_PAYOUT_STATES
        ):
            return payout
    return None


def _payout_problem(row: StripePayout) -> tuple[PayoutStatus, str] | None:
    """Why the claimed row cannot be paid out as it is now (None when it can)."""
    if row.amount is None or row.amount <= 0:
        return PayoutStatus.ABORTED, REASON_AMOUNT % (row.amount or 0)
    mapping = row.account_mapping
    if mapping is None:
        return PayoutStatus.ON_HOLD, REASON_NO_ACCOUNT % row.mirakl_shop_id
    if not mapping.payout_enabled:
        return PayoutStatus.ON_HOLD, REASON_PAYOUTS_DISABLED % mapping.mirakl_shop_id
    return None


def execute_payout(payout_id: int) -> None:
    """Create the Stripe payout of one PENDING row, exactly once; record the outcome.

    Does nothing while the invoice's transfers are still PENDING (the next run sends it).
    """
    row = db.session.get(StripePayout, payout_id)
    if row is None or _invoices_with_pending_transfers([row.mirakl_invoice_id]):
        db.session.rollback()
        return
    claim = attempts.claim(
        StripePayout,
        payout_id,
        pending=PayoutStatus.PENDING.value,
        operation="payout",
        mirakl_id=str(row.mirakl_invoice_id),
    )
    if claim is None:
        return
    row = claim.row
    problem = _payout_problem(row)
    if problem:
        transitions.transition(row, problem[0], problem[1], actor=MONEY_ACTOR, attempted_at=None)
        db.session.commit()
        return
    account = row.account_mapping.stripe_account_id
    gateway = get_stripe()
    try:
        found = (
            find_existing_payout(gateway, account, row.mirakl_invoice_id)
            if claim.is_recheck
            else None
        )
        created = found or gateway.create_payout(
            account,
            amount=row.amount,
            currency=row.currency,
            metadata={"miraklShopId": row.mirakl_shop_id, "invoiceId": row.mirakl_invoice_id},
            idempotency_key=claim.key,
        )
    except StripeRefused as exc:
        attempts.record_refusal(row, PayoutStatus.FAILED, exc.message, actor=MONEY_ACTOR)
        log.warning(
            "payout %s (invoice %s, attempt %s): refused: %s (request %s)",
            row.id,
            row.mirakl_invoice_id,
            row.attempt,
            exc.message,
            exc.request_id,
        )
        return
    except StripeOutcomeUnknown as exc:
        attempts.record_unknown(row, exc.message, actor=MONEY_ACTOR)
        return
    attempts.record_success(row, PayoutStatus.CREATED, actor=MONEY_ACTOR, payout_id=created["id"])
    log.info(
        "payout %s (invoice %s, attempt %s): created %s",
        row.id,
        row.mirakl_invoice_id,
        row.attempt,
        created["id"],
    )


# ---------------------------------------------------------------- the payout.failed webhook


def handle_payout_failed(event: dict[str, Any]) -> WebhookAnswer:
    """``payout.failed`` (sellers endpoint): the payout is FAILED with Stripe's reason and its
    attempt grows, so the next run pays the invoice again with a new idempotency key."""
    payout = event_object(event)
    row = db.session.execute(
        select(StripePayout).where(StripePayout.payout_id == payout.get("id"))
    ).scalar_one_or_none()
    if row is None:
        return WebhookAnswer(200, "Ignoring payout.failed event for unknown payout.", ignored=True)
    if row.status != PayoutStatus.CREATED.value:
        return WebhookAnswer(
            200, f"Ignoring payout.failed event: payout is {row.status}.", ignored=True
        )
    reason = payout_failure_reason(payout)
    transitions.transition(
        row, PayoutStatus.FAILED, reason, actor=WEBHOOK_ACTOR, attempt=row.attempt + 1
    )
    log.warning(
        "payout %s (invoice %s): failed at the bank: %s", row.id, row.mirakl_invoice_id, reason
    )
    return WebhookAnswer(200, "Payout status updated to failed.")
