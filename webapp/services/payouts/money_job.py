"""Payout money jobs: dispatch order, the payout job and its webhook (docs/payouts.md).

``find_dispatchable_credits`` / ``_fees`` / ``_payouts`` say which PENDING rows may be sent,
in which order: credits, then the fees of invoices whose credits are done, then the payouts
whose invoice has no transfer left to send (``released_by`` does the same when one transfer is
done, in queued mode). ``execute_payout`` claims a PENDING payout row and sends the payout
from the seller's Stripe balance exactly once (looking up an earlier attempt's payout with
``find_existing_payout``); ``handle_payout_failed`` records a ``payout.failed`` event (webhook
handler). Pure rules live in ``payouts``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, select

from webapp.extensions import db
from webapp.models import (
    INVOICE_TRANSFER_TYPES,
    PayoutStatus,
    StripePayout,
    StripeTransfer,
    TransferStatus,
)
from webapp.services.clients import get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.payouts.rules import (
    CREDIT_TYPES,
    DEAD_PAYOUT_STATES,
    FEE_TYPES,
    MONEY_ACTOR,
    REASON_AMOUNT,
    REASON_NO_ACCOUNT,
    REASON_PAYOUTS_DISABLED,
)

log = logging.getLogger(__name__)


def _invoice_filters(
    shop_id: int | None, invoice_id: str | None
) -> tuple[ColumnElement[bool], ...]:
    found: list[ColumnElement[bool]] = []
    if shop_id is not None:
        found.append(StripeTransfer.mirakl_shop_id == shop_id)
    if invoice_id is not None:
        found.append(StripeTransfer.mirakl_id == invoice_id)
    return tuple(found)


def find_dispatchable_credits(shop_id: int | None = None) -> list[int]:
    """PENDING credit transfers (platform → seller) to send (of one shop when given)."""
    return attempts.find_dispatchable(
        StripeTransfer,
        TransferStatus.PENDING,
        StripeTransfer.type.in_(CREDIT_TYPES),
        *_invoice_filters(shop_id, None),
    )


def find_dispatchable_fees(shop_id: int | None = None, invoice_id: str | None = None) -> list[int]:
    """PENDING fee transfers (seller → platform) whose invoice has no credit still PENDING:
    a credit can fund the fees of its invoice, so it goes first. Called after the credits
    were sent (inline), or when one is done (queued: ``released_by``)."""
    pending_credits = select(StripeTransfer.mirakl_id).where(
        StripeTransfer.type.in_(CREDIT_TYPES),
        StripeTransfer.status == TransferStatus.PENDING,
    )
    return attempts.find_dispatchable(
        StripeTransfer,
        TransferStatus.PENDING,
        StripeTransfer.type.in_(FEE_TYPES),
        StripeTransfer.mirakl_id.not_in(pending_credits),
        *_invoice_filters(shop_id, invoice_id),
    )


def released_by(transfer_id: int) -> list[tuple[str, list[int]]]:
    """Queued mode: what an invoice transfer that is no longer PENDING lets go, as
    (operation, row ids): its invoice's fees once none of its credits is PENDING, and its
    payout once none of its transfers is. Without this they waited for the next daily run."""
    row = db.session.get(StripeTransfer, transfer_id)
    if (
        row is None
        or row.type not in INVOICE_TRANSFER_TYPES
        or row.status == TransferStatus.PENDING
    ):
        return []
    fees = find_dispatchable_fees(invoice_id=row.mirakl_id)
    payouts: list[int] = []
    if row.mirakl_id.isdecimal():
        payouts, _ = find_dispatchable_payouts(invoice_id=int(row.mirakl_id))
    else:
        # Only a row imported from the reference can carry such an id (ours are IV01 invoice
        # numbers); no payout row can name it, as payouts hold the invoice id as a number.
        log.warning(
            "transfer %s (%s %r): not an invoice number, no payout to release",
            row.id,
            row.type,
            row.mirakl_id,
        )
    return [(operation, ids) for operation, ids in (("transfer", fees), ("payout", payouts)) if ids]


def _invoices_with_pending_transfers(invoice_ids: Iterable[int]) -> set[int]:
    keys = [str(i) for i in invoice_ids]
    if not keys:
        return set()
    rows = db.session.execute(
        select(StripeTransfer.mirakl_id).where(
            StripeTransfer.type.in_(INVOICE_TRANSFER_TYPES),
            StripeTransfer.status == TransferStatus.PENDING,
            StripeTransfer.mirakl_id.in_(keys),
        )
    ).scalars()
    return {int(k) for k in rows}


def find_dispatchable_payouts(
    shop_id: int | None = None, invoice_id: int | None = None
) -> tuple[list[int], int]:
    """PENDING payouts to send, and how many wait for their invoice's transfers first.

    A payout goes only once its invoice's fee and credit transfers are no longer PENDING:
    fees are collected and credits paid before the seller's balance is paid out.
    """
    where = []
    if shop_id is not None:
        where.append(StripePayout.mirakl_shop_id == shop_id)
    if invoice_id is not None:
        where.append(StripePayout.mirakl_invoice_id == invoice_id)
    ids = attempts.find_dispatchable(StripePayout, PayoutStatus.PENDING, *where)
    if not ids:
        return [], 0
    rows = list(
        db.session.execute(
            select(StripePayout.id, StripePayout.mirakl_invoice_id)
            .where(StripePayout.id.in_(ids))
            .order_by(StripePayout.id)
        )
    )
    blocked = _invoices_with_pending_transfers(invoice for _, invoice in rows)
    ready = [row_id for row_id, invoice in rows if invoice not in blocked]
    return ready, len(rows) - len(ready)


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
        pending=PayoutStatus.PENDING,
        operation="payout",
        mirakl_id=str(row.mirakl_invoice_id),
        eager=("account_mapping",),
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
    attempts.send_once(
        claim,
        find=lambda: find_existing_payout(gateway, account, row.mirakl_invoice_id),
        send=lambda: gateway.create_payout(
            account,
            amount=row.amount,
            currency=row.currency,
            metadata={"miraklShopId": row.mirakl_shop_id, "invoiceId": row.mirakl_invoice_id},
            idempotency_key=claim.key,
        ),
        created=PayoutStatus.CREATED,
        failed=PayoutStatus.FAILED,
        id_field="payout_id",
        actor=MONEY_ACTOR,
        label=f"payout {row.id} (invoice {row.mirakl_invoice_id})",
    )
