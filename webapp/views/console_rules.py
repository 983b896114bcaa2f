"""What the console tells an operator about a row: pure functions of plain values.

Shop state, which link a shop has, how many tries a money row took, the Mirakl name of a
row and when a scheduled job runs next. No ``db``, no request, no clock (``now`` is given).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from croniter import croniter

# Stripe ``requirements.disabled_reason`` values that mean Stripe stopped the account; the
# ``requirements.*`` and ``under_review`` ones mean the seller (or Stripe) still has work to do.
DISABLING_REASONS = ("rejected.", "listed", "platform_paused", "other")
ONBOARDING_LINK_PATH = "/api/public/onboarding/refresh"  # our wrapper of a Stripe Account Link
SHOP_STATES = ("onboarded", "pending", "disabled", "ignored")
INVOICE_TYPES = ("TRANSFER_SUBSCRIPTION", "TRANSFER_EXTRA_CREDITS", "TRANSFER_EXTRA_INVOICES")


def is_disabling(disabled_reason: str | None) -> bool:
    """Whether Stripe's reason means the account was stopped, not merely unfinished."""
    return bool(disabled_reason) and disabled_reason.startswith(DISABLING_REASONS)


def shop_state(
    *, ignored: bool, payout_enabled: bool, payin_enabled: bool, disabled_reason: str | None
) -> str:
    """onboarded, pending, disabled or ignored; first matching check wins.

    1. ignored by the operator → ignored
    2. charges and payouts enabled → onboarded
    3. Stripe stopped the account (rejected.*, listed, platform_paused, other) → disabled
    4. anything else (onboarding not finished, requirements due or being verified) → pending
    """
    if ignored:
        return "ignored"
    if payout_enabled and payin_enabled:
        return "onboarded"
    return "disabled" if is_disabling(disabled_reason) else "pending"


def link_kind(url: str | None) -> str | None:
    """``onboarding`` (our refresh URL of an Account Link), ``login`` (Express dashboard)."""
    if not url:
        return None
    return "onboarding" if ONBOARDING_LINK_PATH in url else "login"


def tries_taken(status: str, attempt: int | None) -> int:
    """Stripe calls a money row took: every refused one (``attempt``), plus the one that
    succeeded. ``attempt`` grows only when Stripe refuses, so it alone reads 1 both after one
    refusal and after success at the second try."""
    refused = attempt or 0
    return refused + 1 if status.endswith("CREATED") else refused


def mirakl_label(operation: str, row: Any) -> str:
    """The name an operator knows a money row by: order 1234-A, refund 77, invoice 93117."""
    if operation == "refund":
        return f"refund {row.mirakl_refund_id} (order {row.mirakl_order_id})"
    if operation == "payout":
        return f"invoice {row.mirakl_invoice_id}"
    if operation == "payment":
        return f"order {row.mirakl_commercial_order_id} ({row.stripe_charge_id})"
    kind = (row.type or "").removeprefix("TRANSFER_")
    noun = {"REFUND": "refund", "PRODUCT_ORDER": "order", "SERVICE_ORDER": "order"}.get(
        kind, "invoice"
    )
    return f"{noun} {row.mirakl_id}"


def next_run(cron: str, now: datetime) -> datetime:
    """The next time (UTC, naive) a cron expression fires after ``now``."""
    return croniter(cron, now).get_next(datetime)


def job_of(operation: str, transfer_type: str | None = None) -> str:
    """The scheduled job whose run sends a PENDING row of this kind."""
    if operation == "payout" or transfer_type in INVOICE_TYPES:
        return "process-payout"
    if operation == "refund" or transfer_type == "TRANSFER_REFUND":
        return "process-refund"
    return "process-transfer"
