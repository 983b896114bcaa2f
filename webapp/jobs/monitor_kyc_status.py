"""``connector monitor-kyc-status``: find connected accounts that need KYC action.

Schedule: daily at 07:00. Every Stripe connected account is checked; mapped shops needing
KYC are flagged (and un-flagged once approved), optionally pushed to Mirakl with a fresh
link (``KYC_MIRAKL_SHOP_DISABLE_UPDATE``), and listed in an e-mail to
``TECHNICAL_ALERT_EMAIL``.
"""

from __future__ import annotations

from webapp.jobs.runner import JobContext
from webapp.services.onboarding import kyc_monitor

NAME = "monitor-kyc-status"
SCHEDULE = "0 7 * * *"


def run(ctx: JobContext) -> None:
    """Check every account, push and e-mail the ones needing KYC."""
    result = kyc_monitor.monitor_kyc()
    ctx.report("accounts", result.counts())
    if result.need_kyc:
        ctx.report("e-mail", note="sent" if result.mailed else "not sent (mail disabled)")
