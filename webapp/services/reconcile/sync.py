"""Reconciliation gathering: page through Stripe and Mirakl, compare with our rows, store.

Memory stays flat in the window size: Stripe lists are read one page (100 objects) at a
time, each page matched against our rows with one ``IN`` query, and the findings of the
page stored before the next one. Which of our rows a page matched is kept as one bit per row
id (``SeenIds``), so after the Stripe pass the rows of the window that no list showed are
looked up one by one (an object created outside the listed range, or gone: missing).

Stripe calls: transfers of the platform (reversals embedded), refunds of the platform, and
per connected account its payouts (and its transfers when it has subscription/extra-invoice
rows in the window), all with ``created`` filters, 100 per call, through the gateway's pacing.
Mirakl calls: PA12/SPA12 (refunds still waiting) and OR11/SOR11 by order id, 100 per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.reconcile.findings import resolve_unseen
from webapp.services.reconcile.mirakl_sync import compare_mirakl_refunds, compare_order_refunds
from webapp.services.reconcile.rules import Finding
from webapp.services.reconcile.runs import Run
from webapp.services.reconcile.stripe_sync import (
    compare_platform_transfers,
    compare_refunds,
    compare_seller_accounts,
    look_up_unseen_rows,
)


@dataclass(frozen=True)
class Outcome:
    """What a run did, for the job's summary lines."""

    examined: dict[str, int]
    found: dict[str, int]
    new: int
    resolved: int
    printed: tuple[Finding, ...]
    stripe_calls: int
    mirakl_calls: int


def reconcile(*, since: datetime, until: datetime, token: str) -> Outcome:
    """Compare our rows, Stripe and Mirakl over ``[since, until]``; store the findings."""
    gateway, mirakl = get_stripe(), get_mirakl()
    stripe_before, mirakl_before = gateway.calls, mirakl.calls
    run = Run(since=since, until=until, token=token)
    compare_platform_transfers(run)
    compare_refunds(run)
    compare_seller_accounts(run)
    look_up_unseen_rows(run)
    compare_mirakl_refunds(run)
    compare_order_refunds(run)
    resolved = resolve_unseen(run=token, since=since, until=until, now=run.now)
    return Outcome(
        examined=dict(run.examined),
        found=dict(run.found),
        new=run.new,
        resolved=resolved,
        printed=tuple(run.printed),
        stripe_calls=gateway.calls - stripe_before,
        mirakl_calls=mirakl.calls - mirakl_before,
    )
