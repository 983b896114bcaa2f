"""The money job of a transfer row: create it in Stripe exactly once (docs/split.md).

Used for every transfer type: order transfers (platform → seller, tied to the customer's
charge with ``source_transaction`` and grouped by the commercial order), invoice transfers
(extra credits platform → seller; subscription and extra invoices seller → platform) and
refund reversals (``TRANSFER_REFUND``: a reversal of the order's transfer).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from webapp.extensions import db
from webapp.models import StripeTransfer, TransferStatus, TransferType
from webapp.services.clients import get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.stripe.gateway import StripeGateway

ACTOR = "money-job"
SELLER_TO_PLATFORM = {TransferType.SUBSCRIPTION, TransferType.EXTRA_INVOICES}
# Look for a lost transfer this long before the row existed: rows imported from the PHP
# connector carry its server's local time (anything from UTC-12 to UTC+14), not UTC.
LOOKUP_MARGIN = timedelta(hours=27)


def transfer_metadata(row: StripeTransfer) -> dict[str, Any]:
    """Metadata on the Stripe object: how outside tools and our look-ups find the row."""
    metadata: dict[str, Any] = {"miraklId": row.mirakl_id, "connectorType": row.type}
    if row.type != TransferType.REFUND and row.account_mapping is not None:
        metadata["miraklShopId"] = row.account_mapping.mirakl_shop_id
    return metadata


def missing_field(row: StripeTransfer) -> str | None:
    """Why the row cannot be sent as it is (None when it can)."""
    if row.amount is None or row.amount <= 0:
        return f"Amount must be positive, input was: {row.amount or 0}"
    if not row.currency:
        return "No currency"
    if row.type == TransferType.REFUND:
        return None if row.transaction_id else "No transfer to reverse"
    if row.account_mapping is None:
        return f"Cannot find Stripe account for shop ID {row.mirakl_shop_id}"
    return None


def send(gateway: StripeGateway, row: StripeTransfer, key: str) -> dict[str, Any]:
    """One Stripe call creating the row's transfer or reversal, with the attempt's key."""
    metadata = transfer_metadata(row)
    if row.type == TransferType.REFUND:
        return gateway.create_reversal(
            row.transaction_id, row.amount, metadata=metadata, idempotency_key=key
        )
    account = row.account_mapping.stripe_account_id
    if row.type in SELLER_TO_PLATFORM:
        return gateway.create_transfer(
            amount=row.amount,
            currency=row.currency,
            destination=gateway.platform_account_id(),
            metadata=metadata,
            idempotency_key=key,
            stripe_account=account,
        )
    return gateway.create_transfer(
        amount=row.amount,
        currency=row.currency,
        destination=account,
        metadata=metadata,
        idempotency_key=key,
        source_transaction=row.transaction_id,
        transfer_group=row.transfer_group,
    )


def find_existing(gateway: StripeGateway, row: StripeTransfer) -> dict[str, Any] | None:
    """The Stripe object an earlier attempt may have created, found by its metadata."""

    def ours(obj: dict[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        return (
            metadata.get("miraklId") == row.mirakl_id
            and metadata.get("connectorType", row.type) == row.type
        )

    if row.type == TransferType.REFUND:
        return next((r for r in gateway.list_reversals(row.transaction_id) if ours(r)), None)
    since = int((row.creation_datetime - LOOKUP_MARGIN).timestamp())
    account = row.account_mapping.stripe_account_id
    if row.type in SELLER_TO_PLATFORM:
        candidates = gateway.list_transfers(stripe_account=account, created_gte=since)
    elif row.transfer_group:
        candidates = gateway.list_transfers(transfer_group=row.transfer_group)
    else:
        candidates = gateway.list_transfers(destination=account, created_gte=since)
    return next((t for t in candidates if ours(t)), None)


def execute_transfer(transfer_id: int) -> None:
    """Create the transfer of one PENDING row, exactly once; record the outcome."""
    row = db.session.get(StripeTransfer, transfer_id)
    if row is None:
        return
    claim = attempts.claim(
        StripeTransfer,
        transfer_id,
        pending=TransferStatus.PENDING,
        operation=row.type,
        mirakl_id=row.mirakl_id,
        eager=("account_mapping",),
    )
    if claim is None:
        return
    row = claim.row
    problem = missing_field(row)
    if problem:
        transitions.transition(row, TransferStatus.ON_HOLD, problem, actor=ACTOR, attempted_at=None)
        db.session.commit()
        return
    gateway = get_stripe()
    attempts.send_once(
        claim,
        find=lambda: find_existing(gateway, row),
        send=lambda: send(gateway, row, claim.key),
        created=TransferStatus.CREATED,
        failed=TransferStatus.FAILED,
        id_field="transfer_id",
        actor=ACTOR,
        label=f"transfer {row.id} ({row.type} {row.mirakl_id})",
    )
