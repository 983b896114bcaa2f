"""The payouts workflow's webhook handler: ``payout.failed`` on the sellers endpoint."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    PayoutStatus,
    StripePayout,
)
from webapp.services.ledger import transitions
from webapp.services.payouts.rules import (
    WEBHOOK_ACTOR,
    payout_failure_reason,
)
from webapp.services.stripe.events import WebhookAnswer, event_object, event_object_id

log = logging.getLogger(__name__)


def handle_payout_failed(event: dict[str, Any]) -> WebhookAnswer:
    """``payout.failed`` (sellers endpoint): the payout is FAILED with Stripe's reason and its
    attempt grows, so the next run pays the invoice again with a new idempotency key."""
    payout = event_object(event)
    row = db.session.execute(
        select(StripePayout).where(StripePayout.payout_id == event_object_id(payout))
    ).scalar_one_or_none()
    if row is None:
        return WebhookAnswer(200, "Ignoring payout.failed event for unknown payout.", ignored=True)
    if row.status != PayoutStatus.CREATED:
        return WebhookAnswer(
            200, f"Ignoring payout.failed event: payout is {row.status}.", ignored=True
        )
    reason = payout_failure_reason(payout)
    transitions.transition(
        row, PayoutStatus.FAILED, reason, actor=WEBHOOK_ACTOR, attempt=row.attempt + 1
    )
    log.warning(
        "payout %s (invoice %s): failed at the bank: %s", row.id, row.mirakl_invoice_id, reason
    )
    return WebhookAnswer(200, "Payout status updated to failed.")
