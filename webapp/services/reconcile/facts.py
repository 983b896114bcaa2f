"""Our rows and Stripe's JSON reduced to the plain values ``rules`` compares (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from webapp.models import TransferType
from webapp.services.reconcile.rules import OurRow, StripeFact

PLUGIN_NAME = "MiraklConnector"  # the gateway's pluginName metadata
# Transfers made on the seller's connected account (seller → platform).
ON_SELLER_ACCOUNT = frozenset({TransferType.SUBSCRIPTION, TransferType.EXTRA_INVOICES})


def from_timestamp(seconds: Any) -> datetime:
    """A Stripe ``created`` (unix seconds) as naive UTC, like every date we store."""
    return datetime.fromtimestamp(int(seconds or 0), UTC).replace(tzinfo=None)


def to_timestamp(moment: datetime) -> int:
    """Naive UTC → unix seconds, for Stripe's ``created`` filters."""
    return int(moment.replace(tzinfo=UTC).timestamp())


def transfer_row(row: Any) -> OurRow:
    """An order/invoice transfer row (``transfer``) or a refund reversal row (``reversal``).

    ``row`` has ``StripeTransfer``'s columns and the account's ``stripe_account_id``
    (``sync.TRANSFER_COLUMNS``): plain rows, not ORM objects, keep a long run's memory flat.
    """
    is_reversal = row.type == TransferType.REFUND
    return OurRow(
        operation="reversal" if is_reversal else "transfer",
        id=row.id,
        mirakl_id=row.mirakl_id,
        status=row.status,
        stripe_id=row.transfer_id,
        amount=row.amount,
        currency=row.currency,
        created_at=row.creation_datetime,
        stripe_account_id=row.stripe_account_id if row.type in ON_SELLER_ACCOUNT else None,
        modified_at=row.modification_datetime,
    )


def refund_row(row: Any) -> OurRow:
    """A refund row (``StripeRefund``'s columns)."""
    return OurRow(
        operation="refund",
        id=row.id,
        mirakl_id=row.mirakl_refund_id,
        status=row.status,
        stripe_id=row.stripe_refund_id,
        amount=row.amount,
        currency=row.currency,
        created_at=row.creation_datetime,
        modified_at=row.modification_datetime,
    )


def payout_row(row: Any) -> OurRow:
    """A payout row (``StripePayout``'s columns and the account's ``stripe_account_id``)."""
    return OurRow(
        operation="payout",
        id=row.id,
        mirakl_id=str(row.mirakl_invoice_id),
        status=row.status,
        stripe_id=row.payout_id,
        amount=row.amount,
        currency=row.currency,
        created_at=row.creation_datetime,
        stripe_account_id=row.stripe_account_id,
        modified_at=row.modification_datetime,
    )


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _fact(
    kind: str, obj: Mapping[str, Any], state: str, mirakl_key: str, account: str | None
) -> StripeFact:
    metadata = _metadata(obj)
    mirakl_id = metadata.get(mirakl_key)
    return StripeFact(
        kind=kind,
        id=str(obj.get("id")),
        amount=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or ""),
        state=state,
        created_at=from_timestamp(obj.get("created")),
        mirakl_id=str(mirakl_id) if mirakl_id is not None else None,
        is_tagged=mirakl_id is not None or metadata.get("pluginName") == PLUGIN_NAME,
        account=account,
    )


def transfer_fact(obj: Mapping[str, Any], account: str | None = None) -> StripeFact:
    """A transfer; reversals are compared one by one, so a reversed transfer is still ok."""
    return _fact("transfer", obj, "ok", "miraklId", account)


def reversal_fact(obj: Mapping[str, Any]) -> StripeFact:
    return _fact("reversal", obj, "ok", "miraklId", None)


def refund_fact(obj: Mapping[str, Any]) -> StripeFact:
    status = str(obj.get("status") or "succeeded")
    state = status if status in ("failed", "canceled") else "ok"
    return _fact("refund", obj, state, "miraklRefundId", None)


def payout_fact(obj: Mapping[str, Any], account: str) -> StripeFact:
    status = str(obj.get("status") or "pending")
    state = status if status in ("failed", "canceled") else "ok"
    return _fact("payout", obj, state, "invoiceId", account)


def connector_type(obj: Mapping[str, Any]) -> str | None:
    """The row type a transfer's metadata names (``connectorType``), when it names one."""
    value = _metadata(obj).get("connectorType")
    return str(value) if value else None


def embedded_reversals(transfer: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    """The reversals a listed transfer carries, and whether there are more to list."""
    block = transfer.get("reversals")
    if not isinstance(block, Mapping):
        return [], bool(transfer.get("amount_reversed"))
    return list(block.get("data") or []), bool(block.get("has_more"))
