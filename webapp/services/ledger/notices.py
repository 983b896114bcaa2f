"""Operator notifications recorded as outbox rows, in the caller's transaction.

The status writer records a money row's failure notice in the same transaction as the status
change, so a failure is never lost nor announced twice; ``notify/`` sends the rows later."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    Notification,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferType,
)


def transfer_failed_payload(row: StripeTransfer) -> dict[str, Any]:
    mapping = row.account_mapping
    return {
        "internalId": row.id,
        "miraklId": row.mirakl_id,
        "type": row.type,
        "stripeAccountId": mapping.stripe_account_id if mapping else None,
        "miraklShopId": mapping.mirakl_shop_id if mapping else row.mirakl_shop_id,
        "transferId": row.transfer_id,
        "transactionId": row.transaction_id,
        "amount": row.amount,
        "status": row.status,
        "failedReason": row.status_reason,
        "currency": row.currency,
    }


def refund_failed_payload(row: StripeRefund) -> dict[str, Any]:
    reversal = db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.type == TransferType.REFUND,
            StripeTransfer.mirakl_id == row.mirakl_refund_id,
        )
    ).scalar_one_or_none()
    return {
        "internalId": row.id,
        "miraklOrderId": row.mirakl_order_id,
        "miraklRefundId": row.mirakl_refund_id,
        "stripeRefundId": row.stripe_refund_id,
        "stripeReversalId": reversal.transfer_id if reversal else None,
        "transactionId": row.transaction_id,
        "amount": row.amount,
        "currency": row.currency,
        "status": row.status,
        "failedReason": row.status_reason,
        "type": row.type,
    }


def payout_failed_payload(row: StripePayout) -> dict[str, Any]:
    return {
        "internalId": row.id,
        "amount": row.amount,
        "currency": row.currency,
        "miraklInvoiceId": row.mirakl_invoice_id,
        "stripePayoutId": row.payout_id,
        "payoutId": row.payout_id,
        "status": row.status,
        "failedReason": row.status_reason,
    }


FAILED_PAYLOADS = {
    StripeTransfer: ("transfer.failed", transfer_failed_payload),
    StripeRefund: ("refund.failed", refund_failed_payload),
    StripePayout: ("payout.failed", payout_failed_payload),
}


def record_notification(type_: str, payload: dict[str, Any], dedupe_key: str) -> Notification:
    """Add a notification to the outbox (the caller's transaction commits it)."""
    note = Notification(type=type_, payload=json.dumps(payload), dedupe_key=dedupe_key)
    db.session.add(note)
    return note


def record_operation_failed(row: StripeTransfer | StripeRefund | StripePayout) -> None:
    """Outbox row for a money row that has just moved to its failed status."""
    type_, build = FAILED_PAYLOADS[type(row)]
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    record_notification(type_, build(row), f"{type_}:{row.id}:{row.attempt}:{stamp}")


def record_account_updated(mirakl_shop_id: int, stripe_account_id: str, event_id: str) -> None:
    """Outbox row for a handled account.updated event (one per Stripe event)."""
    record_notification(
        "account.updated",
        {"miraklShopId": mirakl_shop_id, "stripeUserId": stripe_account_id},
        f"account.updated:{event_id}",
    )
