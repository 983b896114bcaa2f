"""Pure assembly of a timeline: what the search box was given, and the story in time order.

No ``db``: ``gather.py`` fetches the rows and hands them here as ``Facts``; rows are read
through their attributes only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Longest first: "trr_" must win over "tr_".
STRIPE_PREFIXES = ("acct_", "trr_", "ch_", "py_", "pi_", "tr_", "re_", "po_")
MAX_QUERY = 255  # characters


@dataclass(frozen=True)
class Query:
    """What was typed: ``stripe`` (with its ``prefix``), ``number`` or ``text``."""

    kind: str
    value: str
    prefix: str = ""


def parse_query(raw: str) -> Query | None:
    """Classify a search: a Stripe id by prefix, a number (shop, invoice, refund or order id)
    or any other text (a Mirakl order or commercial order id). None when empty."""
    value = " ".join((raw or "").split())[:MAX_QUERY].replace("\x00", "")
    if not value:
        return None
    for prefix in STRIPE_PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix):
            return Query("stripe", value, prefix)
    return Query("number" if value.isdecimal() else "text", value)


@dataclass
class Facts:
    """The rows of one story (ORM rows or anything with the same attributes)."""

    payments: list[Any] = field(default_factory=list)
    transfers: list[Any] = field(default_factory=list)
    refunds: list[Any] = field(default_factory=list)
    payouts: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # OperationEvent
    notifications: list[Any] = field(default_factory=list)
    audits: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """One line of the story."""

    at: datetime
    kind: str  # payment, transfer, reversal, refund, payout, notification, operator, mirakl
    title: str
    detail: str = ""
    status: str = ""
    stripe_id: str | None = None
    stripe_account: str | None = None
    actor: str = ""


def row_title(operation: str, row: Any) -> str:
    """How the timeline names a row: "Transfer for order 1234-A", "Payout of invoice 93117"."""
    if operation == "payment":
        return f"Payment {row.stripe_charge_id} of order {row.mirakl_commercial_order_id}"
    if operation == "refund":
        return f"Refund {row.mirakl_refund_id} of order {row.mirakl_order_id}"
    if operation == "payout":
        return f"Payout of invoice {row.mirakl_invoice_id}"
    if row.type == "TRANSFER_REFUND":
        return f"Reversal for refund {row.mirakl_id}"
    if row.type in ("TRANSFER_PRODUCT_ORDER", "TRANSFER_SERVICE_ORDER"):
        return f"Transfer for order {row.mirakl_id}"
    return f"Transfer for invoice {row.mirakl_id} ({row.type.removeprefix('TRANSFER_').lower()})"


def _stripe_of(operation: str, row: Any) -> tuple[str | None, str | None]:
    mapping = getattr(row, "account_mapping", None)
    account = getattr(mapping, "stripe_account_id", None)
    if operation == "payment":
        return row.stripe_charge_id, None
    if operation == "refund":
        return row.stripe_refund_id, None
    if operation == "payout":
        return row.payout_id, account
    return row.transfer_id, None


def _kind(operation: str, row: Any) -> str:
    if operation == "transfer" and row.type == "TRANSFER_REFUND":
        return "reversal"
    return operation


def money_entries(facts: Facts) -> list[Entry]:
    """Every status change of every money row, with its reason and who made it."""
    rows: dict[tuple[str, int], Any] = {}
    for operation, group in (("payment", facts.payments), ("transfer", facts.transfers),
                             ("refund", facts.refunds), ("payout", facts.payouts)):  # fmt: skip
        rows.update({(operation, row.id): row for row in group})
    entries = []
    for event in facts.events:
        row = rows.get((event.operation, event.operation_id))
        if row is None:
            continue
        stripe_id, account = _stripe_of(event.operation, row)
        moved = f"{event.from_status or 'new'} → {event.to_status}"
        entries.append(
            Entry(
                at=event.created_at, kind=_kind(event.operation, row),
                title=row_title(event.operation, row), detail=moved,
                status=event.to_status, actor=event.actor or "",
                stripe_id=stripe_id if event.to_status.upper().endswith(("CREATED", "CAPTURED"))
                else None,
                stripe_account=account,
            )
        )  # fmt: skip
        if event.reason:
            entries[-1] = _with_reason(entries[-1], event.reason)
    return entries


def _with_reason(entry: Entry, reason: str) -> Entry:
    return Entry(**{**entry.__dict__, "detail": f"{entry.detail}: {reason}"})


def mirakl_entries(facts: Facts) -> list[Entry]:
    """What we told Mirakl: PA01 (payment debited or refused), PA02/SPA02 (refund validated)."""
    entries = []
    for payment in facts.payments:
        if payment.mirakl_debit_status:
            entries.append(Entry(
                at=payment.modification_datetime, kind="mirakl",
                title=f"PA01 sent for order {payment.mirakl_commercial_order_id}",
                detail=f"payment_status {payment.mirakl_debit_status}",
            ))  # fmt: skip
    for refund in facts.refunds:
        if refund.mirakl_validation_time:
            call = "SPA02" if refund.type == "REFUND_SERVICE_ORDER" else "PA02"
            entries.append(Entry(
                at=refund.mirakl_validation_time, kind="mirakl",
                title=f"{call} sent for refund {refund.mirakl_refund_id}",
                detail="refund validated on Mirakl",
            ))  # fmt: skip
    return entries


def notification_entries(facts: Facts) -> list[Entry]:
    """Operator notifications: what was sent, and whether it arrived."""
    entries = []
    for note in facts.notifications:
        try:
            payload = json.loads(note.payload or "{}")
        except ValueError:
            payload = {}
        reason = payload.get("failedReason") or ""
        detail = f"{note.status}" + (f" ({note.last_error})" if note.last_error else "")
        entries.append(Entry(
            at=note.created_at, kind="notification", title=f"Notification {note.type}",
            detail=f"{detail}: {reason}" if reason else detail, status=note.status,
        ))  # fmt: skip
    return entries


def audit_entries(facts: Facts) -> list[Entry]:
    """Operator actions (retry, abort, ignore, new link…) from the audit trail."""
    return [
        Entry(
            at=event.created_at,
            kind="operator",
            title=f"{event.action.replace('_', ' ')} on {event.mirakl_id or event.target_type}",
            detail="; ".join(p for p in (event.reason, event.outcome) if p),
            actor=event.actor,
        )  # fmt: skip
        for event in facts.audits
    ]


def assemble(facts: Facts) -> list[Entry]:
    """The whole story, oldest first (ties keep the order money, Mirakl, notifications,
    operators, so a status change comes before the notification it caused)."""
    parts: Iterable[list[Entry]] = (
        money_entries(facts), mirakl_entries(facts), notification_entries(facts),
        audit_entries(facts),
    )  # fmt: skip
    entries = [entry for part in parts for entry in part]
    return sorted(entries, key=lambda e: e.at)


def kyc_summary(payload: str | None) -> str:
    """One line from an account.updated event: charges/payouts, disabled reason, what is due."""
    try:
        account = json.loads(payload or "{}").get("data", {}).get("object", {})
    except (ValueError, AttributeError):
        return ""
    requirements = account.get("requirements") or {}
    parts = [
        f"charges {'on' if account.get('charges_enabled') else 'off'}",
        f"payouts {'on' if account.get('payouts_enabled') else 'off'}",
        f"details {'submitted' if account.get('details_submitted') else 'not submitted'}",
    ]
    if requirements.get("disabled_reason"):
        parts.append(f"disabled_reason {requirements['disabled_reason']}")
    due = requirements.get("currently_due") or []
    if due:
        parts.append(f"due: {', '.join(due[:5])}" + (" …" if len(due) > 5 else ""))
    return ", ".join(parts)
