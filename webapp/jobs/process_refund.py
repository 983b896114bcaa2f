"""Refund customers and pull back seller shares: ``connector process-refund`` (every 5 minutes).

Gated by ``ENABLE_PRODUCT_PAYMENT_REFUND`` (PA12) and ``ENABLE_SERVICE_PAYMENT_REFUND``
(SPA12). Refund rows first, then their money jobs (Stripe refund + PA02/SPA02), then the
reversal rows (new and backlog) and their money jobs (transfer reversals).
"""

from __future__ import annotations

from flask import current_app

from webapp.jobs.runner import JobContext
from webapp.models import RefundStatus, StripeRefund
from webapp.services.ledger import attempts
from webapp.services.refunds import reversal_sync
from webapp.services.refunds import sync as refund_sync

NAME = "process-refund"
SCHEDULE = "*/5 * * * *"


def run(ctx: JobContext) -> None:
    cfg = current_app.config
    product, service = cfg["ENABLE_PRODUCT_PAYMENT_REFUND"], cfg["ENABLE_SERVICE_PAYMENT_REFUND"]
    if not (product or service):
        ctx.report("refunds", note="disabled (ENABLE_*_PAYMENT_REFUND are false)")
        return
    if product:
        ctx.report("product refunds", refund_sync.sync_product_refunds())
    if service:
        ctx.report("service refunds", refund_sync.sync_service_refunds())
    requeued = refund_sync.requeue_unvalidated_refunds()
    if requeued:
        ctx.report("unvalidated refunds", requeued)
    ids = attempts.find_dispatchable(StripeRefund, RefundStatus.PENDING)
    ctx.report("refund jobs", {"dispatched": ctx.dispatch("refund", ids)})
    ctx.report("reversals", reversal_sync.sync_reversal_backlog())
    ids = reversal_sync.find_dispatchable_reversals()
    ctx.report("reversal jobs", {"dispatched": ctx.dispatch("transfer", ids)})
