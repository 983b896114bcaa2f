"""``connector validate-pending-debit``: confirm customer debits to Mirakl, then capture.

Schedule: every 5 minutes. PA11 pending debits with a payment mapping get PA01 (OK, or
REFUSED when the payment failed or was canceled); with ``ENABLE_SERVICE_PAYMENT_VALIDATION``
SPA11 service debits get SPA01 the same way. Authorised payments whose logistical orders are
all accepted or refused are captured for what sellers accepted, or canceled.
"""

from __future__ import annotations

from flask import current_app

from webapp.jobs.runner import JobContext
from webapp.services.validation import rules as validation_rules
from webapp.services.validation import sync as validation_sync

NAME = "validate-pending-debit"
SCHEDULE = "*/5 * * * *"


def run(ctx: JobContext) -> None:
    """Send PA01 for pending debits, then decide and run captures and cancels."""
    ctx.report("pending debits", validation_sync.sync_pending_debits())
    if current_app.config["ENABLE_SERVICE_PAYMENT_VALIDATION"]:
        ctx.report("service pending debits", validation_sync.sync_service_pending_debits())
    counts, ready = validation_sync.sync_captures()
    ctx.report("payments to capture", counts)
    ctx.report("capture jobs", {"dispatched": ctx.dispatch(validation_rules.OPERATION, ready)})
