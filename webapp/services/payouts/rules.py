"""Seller settlement (docs/payouts.md): per Mirakl invoice (IV01), three transfers and one payout.

Each invoice gives a payout of ``amount_transferred`` from the seller's Stripe balance to their
bank, a seller → platform transfer for the subscription and for other invoices (fees), and a
platform → seller transfer for other credits. The fees are collected and the credits paid
before the payout of the same invoice is sent, so the payout never spends money that the
platform is about to collect. Transfers are executed by ``ledger/transfer_job.py`` (operation
``transfer``), payouts by ``execute_payout`` (operation ``payout``).

This module holds the pure evaluation (no I/O): decisions, amounts, reasons and checkpoint
dates. Orchestration is in ``payouts/sync.py`` (invoices → rows, backlog, console retries); the
dispatch order, the money job ``execute_payout`` and the ``payout.failed`` webhook handler are
in ``payouts/money_job.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from webapp.errors import MiraklDataError
from webapp.models import (
    PayoutStatus,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger.minor_units import MAX_AMOUNT, to_minor
from webapp.services.mirakl.fields import parse_date
from webapp.services.mirakl.types import Invoice

log = logging.getLogger(__name__)

CHECKPOINT = "seller_settlement_checkpoint"
JOB_ACTOR = "process-payout"
MONEY_ACTOR = "money-job"
WEBHOOK_ACTOR = "webhook:payout.failed"
RETRIABLE_TRANSFER = (TransferStatus.FAILED, TransferStatus.ON_HOLD)
RETRIABLE_PAYOUT = (PayoutStatus.FAILED, PayoutStatus.ON_HOLD)
CREDIT_TYPES = (TransferType.EXTRA_CREDITS,)  # platform → seller
FEE_TYPES = (
    TransferType.SUBSCRIPTION,
    TransferType.EXTRA_INVOICES,
)  # seller → platform
DEAD_PAYOUT_STATES = ("failed", "canceled")  # Stripe payouts that did not pay the seller

REASON_NO_SHOP = "No shop ID provided"
REASON_NO_ACCOUNT = "Cannot find Stripe account for shop ID %s"
REASON_PAYOUTS_DISABLED = "Payouts are disabled shop ID %s"
REASON_AMOUNT = "Amount must be positive, input was: %d"
REASON_TOO_LARGE = "Amount is too large, input was: %d"  # ours: the amount is not stored
REASON_NOT_RETURNED = "Invoice %s is no longer returned by Mirakl (IV01)"
REASON_UNREADABLE = "Invoice %s could not be read from Mirakl: %s"


# ---------------------------------------------------------------- pure evaluation


@dataclass(frozen=True)
class Decision:
    """What a row should become: status, amount in minor units, and why."""

    status: str
    amount: int | None
    reason: str | None = None


def invoice_transfer_values(invoice: Invoice) -> list[tuple[TransferType, Decimal]]:
    """The invoice's summary totals behind each invoice transfer type (docs/payouts.md)."""
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

    First of all (ours), an amount above ``MAX_AMOUNT`` (garbage from Mirakl) → ON_HOLD
    ``Amount is too large, input was: N``, the amount not stored.
    """
    amount = abs(to_minor(value, currency))
    if amount > MAX_AMOUNT:
        return Decision(TransferStatus.ON_HOLD, None, REASON_TOO_LARGE % amount)
    if transfer_id:
        return Decision(TransferStatus.CREATED, amount)
    if not shop_id:
        return Decision(TransferStatus.ABORTED, amount, REASON_NO_SHOP)
    if not has_account:
        return Decision(TransferStatus.ON_HOLD, amount, REASON_NO_ACCOUNT % shop_id)
    if amount == 0:
        return Decision(TransferStatus.ABORTED, amount, REASON_AMOUNT % amount)
    return Decision(TransferStatus.PENDING, amount)


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

    First of all (ours), an amount above ``MAX_AMOUNT`` (garbage from Mirakl) → ON_HOLD
    ``Amount is too large, input was: N``, the amount not stored.
    """
    amount = to_minor(amount_transferred, currency)
    if abs(amount) > MAX_AMOUNT:
        return Decision(PayoutStatus.ON_HOLD, None, REASON_TOO_LARGE % amount)
    if payout_id and status not in RETRIABLE_PAYOUT:
        return Decision(PayoutStatus.CREATED, amount)
    if amount <= 0:
        return Decision(PayoutStatus.ABORTED, amount, REASON_AMOUNT % amount)
    if not shop_id:
        return Decision(PayoutStatus.ABORTED, amount, REASON_NO_SHOP)
    if not has_account:
        return Decision(PayoutStatus.ON_HOLD, amount, REASON_NO_ACCOUNT % shop_id)
    if not payouts_enabled:
        return Decision(PayoutStatus.ON_HOLD, amount, REASON_PAYOUTS_DISABLED % shop_id)
    return Decision(PayoutStatus.PENDING, amount)


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
