"""Reconciliation against Mirakl: refunds still waiting (PA12/SPA12) although Stripe
refunded them, and orders refunded in Mirakl (OR11/SOR11) with no reversal here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import StripeRefund, StripeTransfer, TransferType
from webapp.services.chunking import chunked
from webapp.services.clients import get_mirakl
from webapp.services.mirakl.client import TAX_SUFFIX
from webapp.services.mirakl.types import BadItem
from webapp.services.reconcile import facts
from webapp.services.reconcile.rules import (
    Finding,
    evaluate_mirakl_refund,
    evaluate_order_refund,
)
from webapp.services.reconcile.runs import PAGE, Run, refund_rows, transfer_rows

# ---------------------------------------------------------------- Mirakl


def compare_mirakl_refunds(run: Run) -> None:
    """Refunds Mirakl still lists as waiting (PA12/SPA12) although Stripe refunded them."""
    cfg, mirakl = current_app.config, get_mirakl()
    listings = []
    if cfg["ENABLE_PRODUCT_PAYMENT_REFUND"]:
        listings.append(mirakl.list_pending_refunds())
    if cfg["ENABLE_SERVICE_PAYMENT_REFUND"]:
        listings.append(mirakl.list_service_pending_refunds())
    for listing in listings:
        for page in chunked((item for item in listing if not isinstance(item, BadItem)), PAGE):
            rows = db.session.execute(
                refund_rows().where(
                    StripeRefund.mirakl_refund_id.in_(sorted({item.id for item in page}))
                )
            ).all()
            findings = []
            for row in rows:
                run.examined["mirakl refund"] += 1
                findings.append(
                    evaluate_mirakl_refund(
                        facts.refund_row(row), is_waiting_in_mirakl=True, now=run.now
                    )
                )
            run.record(findings)


def compare_order_refunds(run: Run) -> None:
    """CREATED order transfers of the window whose order Mirakl refunded with no reversal here."""
    cfg, mirakl = current_app.config, get_mirakl()
    domains = []
    if cfg["ENABLE_PRODUCT_PAYMENT_REFUND"]:
        domains.append((TransferType.PRODUCT_ORDER, mirakl.list_orders_by_id))
    if cfg["ENABLE_SERVICE_PAYMENT_REFUND"]:
        domains.append((TransferType.SERVICE_ORDER, mirakl.list_service_orders_by_id))
    for transfer_type, fetch in domains:
        last_id = 0
        while True:
            rows = db.session.execute(
                transfer_rows()
                .where(
                    StripeTransfer.id > last_id,
                    StripeTransfer.type == transfer_type,
                    StripeTransfer.status == "TRANSFER_CREATED",
                    StripeTransfer.creation_datetime >= run.since,
                    StripeTransfer.creation_datetime <= run.until,
                )
                .order_by(StripeTransfer.id)
                .limit(PAGE)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            run.record(_compare_orders(run, rows, fetch))


def _compare_orders(
    run: Run, rows: Sequence[Any], fetch: Callable[[list[str]], Iterable[Any]]
) -> list[Finding | None]:
    by_order = {row.mirakl_id: row for row in rows if not row.mirakl_id.endswith(TAX_SUFFIX)}
    refunds: list[tuple[Any, str, str]] = []
    for order in fetch(sorted(by_order)):
        if isinstance(order, BadItem) or order.id not in by_order:
            continue
        run.examined["mirakl order"] += 1
        entries = getattr(order, "refunds", None)
        if entries is None:
            entries = [refund for line in order.lines for refund in line.refunds]
        refunds.extend((by_order[order.id], refund.id, refund.state) for refund in entries)
    if not refunds:
        return []
    reversed_ids = set(
        db.session.execute(
            select(StripeTransfer.mirakl_id).where(
                StripeTransfer.type == TransferType.REFUND,
                StripeTransfer.mirakl_id.in_(sorted({refund_id for _, refund_id, _ in refunds})),
            )
        ).scalars()
    )
    return [
        evaluate_order_refund(
            facts.transfer_row(row), refund_id, state, has_reversal_row=refund_id in reversed_ids
        )
        for row, refund_id, state in refunds
    ]
