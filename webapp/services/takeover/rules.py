"""Pure rules of the take-over: reference row → our row, and whether it conflicts with ours.

Every table is keyed by what Mirakl or Stripe names it by (shop id, charge id, type and Mirakl
id, refund id, invoice id, checkpoint key). For each reference row, ``compare`` decides:

1. we hold no row with that key → INSERT the converted row;
2. we hold one and every fact the reference knows agrees with ours → SAME (nothing written;
   this is what makes a second run change nothing);
3. a fact the reference holds differs from ours (another account, amount, Stripe id…) → a
   CONFLICT naming the shop or Mirakl id. A fact the reference lacks but we hold (a transfer
   id our job added since) is our progress, not a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from webapp.models import (
    PaymentMappingStatus,
    PayoutStatus,
    RefundStatus,
    RefundType,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger.checkpoints import CHECKPOINT_KEYS

IMPORT_ACTOR = "import-reference"
IMPORT_REASON_NOTE = "imported from the PHP connector"
# Keys renamed by the reference's own migrations; an old database may still hold them.
LEGACY_CHECKPOINT_KEYS = {
    "process_transfer_checkpoint": "product_payment_split_checkpoint",
    "process_payout_checkpoint": "seller_settlement_checkpoint",
}
LEGACY_TRANSFER_TYPES = {"TRANSFER_ORDER": TransferType.PRODUCT_ORDER}
LEGACY_TRANSFER_STATUSES = {"TRANSFER_INVALID_AMOUNT": TransferStatus.ABORTED}
# Rows whose Stripe call may have happened without the reference recording it (its worker
# crashed, or a network error was recorded as FAILED): our money job looks in Stripe first.
OUTCOME_UNKNOWN = {
    TransferStatus.PENDING,
    TransferStatus.FAILED,
    RefundStatus.PENDING,
    RefundStatus.FAILED,
    PayoutStatus.PENDING,
    PayoutStatus.FAILED,
}
FINAL_PAYMENT_STATUSES = {
    PaymentMappingStatus.CAPTURED,
    PaymentMappingStatus.CANCELED,
    PaymentMappingStatus.FAILED,
}
# The facts compared per table (our column names), after conversion.
FACTS: dict[str, tuple[str, ...]] = {
    "account_mapping": ("stripe_account_id",),
    "config": ("value",),
    "payment_mapping": ("mirakl_commercial_order_id", "stripe_amount"),
    "stripe_transfer": (
        "mirakl_shop_id", "amount", "currency", "transfer_id", "transaction_id",
    ),
    "stripe_refund": (
        "type", "amount", "currency", "mirakl_order_id", "transaction_id", "stripe_refund_id",
    ),
    "stripe_payout": ("mirakl_shop_id", "amount", "currency", "payout_id"),
}  # fmt: skip


class Verdict(StrEnum):
    INSERT = "to import"
    SAME = "already here"
    CONFLICT = "conflicts"
    SKIPPED = "not imported"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    row: dict[str, Any] | None = None
    message: str | None = None


class UnknownValue(ValueError):
    """A reference value outside its published enum (the row is reported, not imported)."""


# ---------------------------------------------------------------- conversions


def _stamps(ref: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "creation_datetime": ref.get("creation_datetime"),
        "modification_datetime": ref.get("modification_datetime"),
    }


def _claim(status: str, ref: Mapping[str, Any]) -> dict[str, Any]:
    """Ours: a row the reference may have sent is marked claimed at its last change, so our
    money job looks the Stripe object up (metadata) before sending anything."""
    if status in OUTCOME_UNKNOWN:
        return {"attempted_at": ref.get("modification_datetime") or ref.get("creation_datetime")}
    return {}


def _enum(value: Any, enum: type[StrEnum], what: str) -> str:
    try:
        # A plain string: converted rows are compared with ours and quoted with repr() in
        # conflict messages, where a member would show as <TransferStatus.PENDING: ...>.
        return enum(value).value
    except ValueError:
        raise UnknownValue(f"{what} {value!r} is not one of the reference's") from None


def checkpoint_key(key: str) -> str | None:
    """Our checkpoint key for a reference ``config`` key; None for keys we do not use."""
    key = LEGACY_CHECKPOINT_KEYS.get(key, key)
    return key if key in CHECKPOINT_KEYS else None


def account_row(ref: Mapping[str, Any]) -> dict[str, Any]:
    """An ``account_mapping`` row: same columns; the onboarding token carries over so links
    already in sellers' hands keep working."""
    payout, payin = bool(ref.get("payout_enabled")), bool(ref.get("payin_enabled"))
    return {
        "mirakl_shop_id": int(ref["mirakl_shop_id"]),
        "stripe_account_id": ref["stripe_account_id"],
        "onboarding_token": ref.get("onboarding_token") or None,
        "payout_enabled": payout,
        "payin_enabled": payin,
        "ignored": bool(ref.get("ignored")),
        "disabled_reason": ref.get("disabled_reason"),
        # The reference clears the token when details are submitted; it has no column.
        "details_submitted": not ref.get("onboarding_token") and (payout or payin),
        **_stamps(ref),
    }


def payment_row(ref: Mapping[str, Any]) -> dict[str, Any]:
    """A ``payment_mapping`` row; statuses are the same strings."""
    return {
        "mirakl_commercial_order_id": ref.get("mirakl_commercial_order_id"),
        "stripe_charge_id": ref["stripe_charge_id"],
        "status": _enum(ref.get("status"), PaymentMappingStatus, "payment status"),
        "stripe_amount": ref.get("stripe_amount"),
        **_stamps(ref),
    }


def transfer_row(ref: Mapping[str, Any], shop_id: int | None) -> dict[str, Any]:
    """A ``stripe_transfer`` row; ``shop_id`` is the shop of its reference account mapping."""
    kind = LEGACY_TRANSFER_TYPES.get(ref.get("type"), ref.get("type"))
    status = LEGACY_TRANSFER_STATUSES.get(ref.get("status"), ref.get("status"))
    status = _enum(status, TransferStatus, "transfer status")
    return {
        "mirakl_id": str(ref["mirakl_id"]),
        "type": _enum(kind, TransferType, "transfer type"),
        "mirakl_shop_id": shop_id,
        "transfer_id": ref.get("transfer_id") or None,
        "transaction_id": ref.get("transaction_id") or None,
        "amount": ref.get("amount"),
        "currency": (ref.get("currency") or "").lower() or None,
        "status": status,
        "status_reason": ref.get("status_reason"),
        "mirakl_created_date": ref.get("mirakl_created_date"),
        **_stamps(ref),
        **_claim(status, ref),
    }


def refund_row(ref: Mapping[str, Any]) -> dict[str, Any]:
    """A ``stripe_refund`` row; same columns and statuses."""
    status = _enum(ref.get("status"), RefundStatus, "refund status")
    return {
        "type": _enum(ref.get("type") or RefundType.PRODUCT_ORDER, RefundType, "refund type"),
        "amount": ref.get("amount"),
        "currency": (ref.get("currency") or "").lower() or None,
        "mirakl_refund_id": str(ref["mirakl_refund_id"]),
        "mirakl_commercial_order_id": ref.get("mirakl_commercial_order_id"),
        "mirakl_order_id": ref.get("mirakl_order_id"),
        "mirakl_order_line_id": ref.get("mirakl_order_line_id"),
        "transaction_id": ref.get("transaction_id") or None,
        "stripe_refund_id": ref.get("stripe_refund_id") or None,
        "status": status,
        "status_reason": ref.get("status_reason"),
        "mirakl_validation_time": ref.get("mirakl_validation_time"),
        **_stamps(ref),
        **_claim(status, ref),
    }


def payout_row(ref: Mapping[str, Any], shop_id: int | None) -> dict[str, Any]:
    """A ``stripe_payout`` row; same columns and statuses."""
    status = _enum(ref.get("status"), PayoutStatus, "payout status")
    return {
        "mirakl_invoice_id": int(ref["mirakl_invoice_id"]),
        "mirakl_shop_id": shop_id,
        "amount": ref.get("amount"),
        "currency": (ref.get("currency") or "").lower() or None,
        "payout_id": ref.get("payout_id") or None,
        "status": status,
        "status_reason": ref.get("status_reason"),
        "mirakl_created_date": ref.get("mirakl_created_date"),
        **_stamps(ref),
        **_claim(status, ref),
    }


# ---------------------------------------------------------------- decisions


def compare(
    table: str, label: str, theirs: dict[str, Any], ours: Mapping[str, Any] | None
) -> Decision:
    """INSERT, SAME or CONFLICT for one converted reference row against our row with its key."""
    if ours is None:
        return Decision(Verdict.INSERT, theirs)
    for fact in FACTS[table]:
        if theirs.get(fact) is not None and theirs.get(fact) != ours.get(fact):
            return Decision(
                Verdict.CONFLICT,
                message=f"{label}: {fact} is {ours.get(fact)!r} in our database but "
                f"{theirs.get(fact)!r} in the reference",
            )
    if (
        table == "payment_mapping"
        and theirs["status"] in FINAL_PAYMENT_STATUSES
        and ours.get("status") != theirs["status"]
    ):
        return Decision(
            Verdict.CONFLICT,
            message=f"{label}: status is {ours.get('status')!r} in our database but "
            f"{theirs['status']!r} in the reference",
        )
    return Decision(Verdict.SAME)


def account_conflict(shop_id: int, account_id: str, shop_of_account: int | None) -> str | None:
    """The Stripe account is already mapped to another shop in our database."""
    if shop_of_account is not None and shop_of_account != shop_id:
        return (
            f"shop {shop_id}: Stripe account {account_id} is mapped to shop "
            f"{shop_of_account} in our database"
        )
    return None


def label_of(table: str, row: Mapping[str, Any]) -> str:
    """How a message names a row: the shop or Mirakl id the operator searches for."""
    if table == "account_mapping":
        return f"shop {row['mirakl_shop_id']}"
    if table == "config":
        return f"checkpoint {row['key']}"
    if table == "payment_mapping":
        return f"charge {row['stripe_charge_id']} (order {row['mirakl_commercial_order_id']})"
    if table == "stripe_transfer":
        return f"{row['type']} {row['mirakl_id']}"
    if table == "stripe_refund":
        return f"refund {row['mirakl_refund_id']}"
    return f"invoice {row['mirakl_invoice_id']}"


def summary_line(table: str, counts: Mapping[str, int]) -> str:
    """``stripe_transfer: 8 in the reference, 6 to import, 2 already here, 0 conflicts``."""
    parts = [f"{counts.get('read', 0)} in the reference"]
    parts += [f"{counts.get(v, 0)} {v}" for v in Verdict if v != Verdict.SKIPPED]
    if counts.get(Verdict.SKIPPED):
        parts.append(f"{counts[Verdict.SKIPPED]} {Verdict.SKIPPED}")
    return f"{table}: {', '.join(parts)}"
