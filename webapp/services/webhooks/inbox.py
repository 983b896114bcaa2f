"""The Stripe webhook inbox: verify, store once, route by event type, commit, answer.

An event's effect on our records is committed together with its inbox row before the 2xx
answer; follow-up calls (to Mirakl, to the operator) run after the commit, queued when
Redis is there. An event already processed is a no-op; one that failed is processed again
when Stripe redelivers it (dedupe on success, not on receipt).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from webapp.clock import utcnow
from webapp.errors import (
    ConnectorError,
    MiraklError,
    StripeError,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from webapp.extensions import db
from webapp.models import WebhookEvent, WebhookEventStatus
from webapp.services.ledger.transitions import truncate_reason
from webapp.services.notify.outbox import flush_outbox
from webapp.services.onboarding.webhooks import handle_account_updated
from webapp.services.payouts.webhooks import handle_payout_failed
from webapp.services.stripe.events import WebhookAnswer, is_stripe_id
from webapp.services.stripe.gateway import StripeGateway
from webapp.services.validation.webhooks import handle_charge_event

log = logging.getLogger(__name__)


# Event type → the workflow's ``handle(event) -> WebhookAnswer``.
HANDLERS: dict[str, Callable[[dict[str, Any]], WebhookAnswer]] = {
    "account.updated": handle_account_updated,
    "charge.succeeded": handle_charge_event,
    "charge.updated": handle_charge_event,
    "payout.failed": handle_payout_failed,
}
DEPRECATED_EVENTS = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    }
)


def receive(endpoint: str, payload: bytes, signature: str | None, secret: str) -> WebhookAnswer:
    """Handle one webhook delivery to ``endpoint`` (``sellers`` or ``operator``)."""
    try:
        event = StripeGateway.verify_event(payload, signature, secret)
    except (WebhookSignatureInvalid, WebhookPayloadInvalid) as exc:
        return WebhookAnswer(400, exc.message)
    event_type = event["type"]
    if event_type in DEPRECATED_EVENTS:
        return WebhookAnswer(
            200, f"{event_type} is deprecated and ignored: remove it from your webhook settings."
        )
    if event_type not in HANDLERS:
        return WebhookAnswer(400, "Unhandled event type")
    if not is_stripe_id(event.get("id")):
        return WebhookAnswer(400, "Invalid payload.")
    event_id = event["id"]

    inbox = _store(endpoint, event, payload)
    if inbox is None:
        return WebhookAnswer(200, "Event already processed.")
    inbox_id = inbox.id
    try:
        answer = HANDLERS[event_type](event)
    except ConnectorError as exc:
        db.session.rollback()
        # Only errors about the event itself answer 4xx; an API failure asks for redelivery.
        is_about_event = not isinstance(exc, StripeError | MiraklError)
        status = exc.http_status if is_about_event and exc.http_status else 500
        _mark(inbox_id, WebhookEventStatus.FAILED, exc.message)
        return WebhookAnswer(status, exc.message)
    except Exception as exc:  # noqa: BLE001 - the request boundary: Stripe will redeliver
        db.session.rollback()
        log.exception("webhook %s (%s): handler failed", event_id, event_type)
        _mark(inbox_id, WebhookEventStatus.FAILED, f"{type(exc).__name__}: {exc}")
        return WebhookAnswer(500, "Internal error; the event will be processed on redelivery.")
    inbox.status = WebhookEventStatus.IGNORED if answer.ignored else WebhookEventStatus.PROCESSED
    inbox.processed_at = utcnow()
    db.session.commit()
    for follow_up in answer.after_commit:
        try:
            follow_up()
        except Exception:  # noqa: BLE001 - the effect is committed; follow-ups are retried later
            log.exception("webhook %s (%s): follow-up failed", event_id, event_type)
    _queue_notifications(event_id)
    return answer


def _queue_notifications(event_id: str) -> None:
    """Queue the operator notifications this event wrote; never fails the webhook.

    Notifications are never sent inside a request: without Redis they stay PENDING and the
    next job run sends them.
    """
    try:
        flush_outbox(inline=False)
    except Exception as exc:  # noqa: BLE001 - the effect is committed; the next run sends them
        db.session.rollback()
        log.warning("webhook %s: notifications left for the next job run: %s", event_id, exc)


def _store(endpoint: str, event: dict[str, Any], payload: bytes) -> WebhookEvent | None:
    """The committed inbox row to process, or None when this event was already handled.

    The row is committed before the handler runs, so a delivery whose handling fails is
    still on record (status ``failed`` with the error) and is processed on redelivery.
    """
    row = WebhookEvent(
        stripe_event_id=event["id"],
        type=event["type"],
        endpoint=endpoint,
        account=event["account"] if is_stripe_id(event.get("account")) else None,
        payload=payload.decode("utf-8", errors="replace"),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
    # Locked until the handler's effect is committed: a concurrent delivery of the same event
    # waits here, then finds it processed instead of running the handler a second time. The
    # lock is taken by a write, which locks on both databases (SQLite ignores FOR UPDATE: two
    # deliveries both ran the handler there).
    db.session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.stripe_event_id == event["id"])
        .values(status=WebhookEvent.status)
        .execution_options(synchronize_session=False)
    )
    existing = db.session.execute(
        select(WebhookEvent)
        .where(WebhookEvent.stripe_event_id == event["id"])
        .execution_options(populate_existing=True)
    ).scalar_one()
    if existing.status in (WebhookEventStatus.PROCESSED, WebhookEventStatus.IGNORED):
        db.session.rollback()
        return None
    return existing


def _mark(inbox_id: int, status: WebhookEventStatus, error: str) -> None:
    row = db.session.get(WebhookEvent, inbox_id)
    row.status = status
    row.error = truncate_reason(error)
    db.session.commit()


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True)
