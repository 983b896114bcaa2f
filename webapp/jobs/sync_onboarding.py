"""``connector sync-onboarding``: a Stripe Express account and onboarding link for every shop.

Schedule: every minute. S20 shops updated since the onboarding checkpoint, plus the shops
a previous run could not finish, get an account (created once, whatever crashes), their
ignored flag, and a fresh Account Link in the Mirakl custom field (batched S07). Account
updates not yet written to Mirakl (login link, KYC status) are pushed again.
"""

from __future__ import annotations

import click
from flask import current_app

from webapp.jobs.runner import JobContext
from webapp.services.onboarding import kyc_push
from webapp.services.onboarding import sync as onboarding_sync

NAME = "sync-onboarding"
SCHEDULE = "* * * * *"
# The reference's deprecated positional ``delay`` (ignored since its v3), still accepted.
PARAMS = [click.Argument(["delay"], required=False)]


def run(ctx: JobContext, delay: str | None = None) -> None:
    """Onboard new and retried shops, then retry pending Mirakl updates of accounts."""
    if current_app.config["ENABLE_SELLER_ONBOARDING"]:
        ctx.report("shops", onboarding_sync.sync_shops().counts())
    else:
        ctx.report("shops", note="seller onboarding disabled (ENABLE_SELLER_ONBOARDING=false)")
    ctx.report("account updates to Mirakl", kyc_push.push_pending_accounts())
