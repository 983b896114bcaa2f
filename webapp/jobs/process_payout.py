"""Pay sellers from their invoices: ``connector process-payout [MIRAKL_SHOP_ID]``, daily 01:00.

Without a shop id: the backlog of ON_HOLD/FAILED payouts and invoice transfers, then the
invoices created since the settlement checkpoint. With a shop id: every invoice of that shop
(its backlog included), checkpoint untouched. Fees and credits go before the payouts.
"""

from __future__ import annotations

import click

from webapp.jobs.runner import JobContext
from webapp.services.payouts import money_job as payout_money_job
from webapp.services.payouts import sync as payout_sync

NAME = "process-payout"
SCHEDULE = "0 1 * * *"
PARAMS = [click.Argument(["mirakl_shop_id"], required=False, type=int)]


def run(ctx: JobContext, mirakl_shop_id: int | None = None) -> None:
    """Sync invoices, send their transfers, then the payouts whose transfers are done."""
    if mirakl_shop_id is None:
        ctx.report("backlog", payout_sync.sync_backlog())
    invoices = payout_sync.sync_invoices(mirakl_shop_id)
    ctx.report(f"shop {mirakl_shop_id} invoices" if mirakl_shop_id else "invoices", invoices)

    # Credits first: a credit can fund its invoice's fees. Queued, a credit is not done yet
    # when the fees are looked for; its money job sends them (and the payout) once it is.
    sent = 0
    for find in (
        payout_money_job.find_dispatchable_credits,
        payout_money_job.find_dispatchable_fees,
    ):
        wave = find(mirakl_shop_id)
        sent += ctx.dispatch("transfer", wave)
    ctx.report("invoice transfers", {"dispatched": sent})

    payout_ids, waiting = payout_money_job.find_dispatchable_payouts(mirakl_shop_id)
    sent = ctx.dispatch("payout", payout_ids)
    ctx.report("payouts", {"dispatched": sent, "waiting for transfers": waiting})
