"""Pay each seller's share of each order: ``connector process-transfer``, every 5 minutes.

Per enabled domain (``ENABLE_PRODUCT_PAYMENT_SPLIT``, ``ENABLE_SERVICE_PAYMENT_SPLIT``): the
backlog of ON_HOLD/FAILED transfers, then the new orders; then one money job per PENDING
transfer, including those whose earlier job was lost.
"""

from __future__ import annotations

from flask import current_app

from webapp.jobs.runner import JobContext
from webapp.models import TransferType
from webapp.services.split import sync as split_sync

NAME = "process-transfer"
SCHEDULE = "*/5 * * * *"

DOMAINS = (
    ("product", TransferType.PRODUCT_ORDER, "ENABLE_PRODUCT_PAYMENT_SPLIT"),
    ("service", TransferType.SERVICE_ORDER, "ENABLE_SERVICE_PAYMENT_SPLIT"),
)
SYNC_NEW = {"product": split_sync.sync_product_orders, "service": split_sync.sync_service_orders}


def run(ctx: JobContext) -> None:
    """Backlog and new orders per enabled domain, then dispatch the PENDING transfers."""
    enabled = [d for d in DOMAINS if current_app.config[d[2]]]
    for label, _, setting in DOMAINS:
        if (label, _, setting) not in enabled:
            ctx.report(f"{label} orders", note=f"disabled ({setting} is false)")
    for label, kind, _ in enabled:
        ctx.report(f"{label} backlog", split_sync.sync_backlog(kind))
        ctx.report(f"new {label} orders", SYNC_NEW[label]())
    if not enabled:
        return
    ids = split_sync.find_dispatchable_transfers()  # order transfers only
    sent = ctx.dispatch("transfer", ids)
    outcome = split_sync.count_statuses(ids) if ctx.inline else {"queued": sent}
    ctx.report("transfers", {"dispatched": sent, **outcome} if ids else {})
