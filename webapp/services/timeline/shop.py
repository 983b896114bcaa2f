"""The shop page's facts: its KYC history, and its money in and out with totals per currency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    AuditEvent,
    StripePayout,
    StripeTransfer,
    TransferType,
    WebhookEvent,
)

RECENT_ROWS = 20  # rows of each kind listed on the shop page
HISTORY_ROWS = 50  # account.updated events and operator actions shown


@dataclass(frozen=True)
class Total:
    """Money of one direction and currency: what moved (CREATED) and what is still open."""

    direction: str  # in (transfers to the seller), out (reversals, payouts)
    what: str
    currency: str
    moved: int
    moved_count: int


def get_shop(mirakl_shop_id: int) -> AccountMapping:
    """The shop's mapping.

    Raises:
        LookupError: no shop with this Mirakl id.
    """
    shop = db.session.execute(
        select(AccountMapping).where(AccountMapping.mirakl_shop_id == mirakl_shop_id)
    ).scalar_one_or_none()
    if shop is None:
        raise LookupError(f"Shop {mirakl_shop_id} doesn't exist.")
    return shop


def money_totals(shop_id: int) -> list[Total]:
    """Per direction and currency, the amount that really moved (CREATED rows)."""
    t, p = StripeTransfer, StripePayout
    sums: dict[tuple[str, str, str], list[int]] = {}
    for type_, currency, amount, count in db.session.execute(
        select(t.type, t.currency, func.sum(t.amount), func.count())
        .where(t.mirakl_shop_id == shop_id, t.status == "TRANSFER_CREATED")
        .group_by(t.type, t.currency)
    ).all():
        key = ("out", "reversals") if type_ == TransferType.REFUND else ("in", "transfers")
        line = sums.setdefault((*key, currency or ""), [0, 0])
        line[0] += int(amount or 0)
        line[1] += count
    totals = [Total(d, w, c, amount, count) for (d, w, c), (amount, count) in sums.items()]
    for currency, amount, count in db.session.execute(
        select(p.currency, func.sum(p.amount), func.count())
        .where(p.mirakl_shop_id == shop_id, p.status == "PAYOUT_CREATED")
        .group_by(p.currency)
    ).all():
        totals.append(Total("out", "payouts", currency or "", int(amount or 0), count))
    return sorted(totals, key=lambda x: (x.direction, x.what, x.currency))


def recent_money(shop_id: int) -> dict[str, list[Any]]:
    """The shop's latest transfers, reversals and payouts."""
    t = StripeTransfer
    latest = t.id.desc()
    return {
        "transfers": list(db.session.execute(
            select(t).where(t.mirakl_shop_id == shop_id, t.type != TransferType.REFUND)
            .order_by(latest).limit(RECENT_ROWS)).scalars()),
        "reversals": list(db.session.execute(
            select(t).where(t.mirakl_shop_id == shop_id, t.type == TransferType.REFUND)
            .order_by(latest).limit(RECENT_ROWS)).scalars()),
        "payouts": list(db.session.execute(
            select(StripePayout).where(StripePayout.mirakl_shop_id == shop_id)
            .order_by(StripePayout.id.desc()).limit(RECENT_ROWS)).scalars()),
    }  # fmt: skip


def kyc_history(shop: AccountMapping) -> list[WebhookEvent]:
    """The account.updated events Stripe sent for the shop's account, newest first."""
    return list(
        db.session.execute(
            select(WebhookEvent)
            .where(
                WebhookEvent.account == shop.stripe_account_id,
                WebhookEvent.type == "account.updated",
            )
            .order_by(WebhookEvent.id.desc())
            .limit(HISTORY_ROWS)
        ).scalars()
    )


def shop_actions(shop: AccountMapping) -> list[AuditEvent]:
    """Operator actions on the shop (new link, KYC push), newest first."""
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.target_type == "shop", AuditEvent.target_id == str(shop.id))
            .order_by(AuditEvent.id.desc())
            .limit(HISTORY_ROWS)
        ).scalars()
    )
