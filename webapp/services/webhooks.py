"""The Stripe webhook inbox: verify, store once, route by event type, commit, answer.

An event's effect on our records is committed together with its inbox row before the 2xx
answer; follow-up calls (to Mirakl, to the operator) run after the commit, queued when
Redis is there. An event already processed is a no-op; one that failed is processed again
when Stripe redelivers it (dedupe on success, not on receipt).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
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
from webapp.services.stripe_gateway import StripeGateway
from webapp.services.transitions import truncate_reason

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 255  # characters: Stripe ids are stored in String(255) columns

# Event type → dotted path of ``handle(event) -> WebhookAnswer``; resolved when used.
HANDLERS: dict[str, str] = {
    "account.updated": "webapp.services.kyc_push.handle_account_updated",
    "charge.succeeded": "webapp.services.payments.handle_charge_event",
    "charge.updated": "webapp.services.payments.handle_charge_event",
    "payout.failed": "webapp.services.payout_execution.handle_payout_failed",
}
DEPRECATED_EVENTS = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    }
)


@dataclass
class WebhookAnswer:
    """What the endpoint answers, and what to run once the effect is committed."""

    status: int
    message: str
    after_commit: list[Callable[[], Any]] = field(default_factory=list)
    ignored: bool = False


def _handler(event_type: str) -> Callable[[dict[str, Any]], WebhookAnswer]:
    module, _, name = HANDLERS[event_type].rpartition(".")
    return getattr(importlib.import_module(module), name)


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
        answer = _handler(event_type)(event)
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
    from webapp.services.notifications import flush_outbox

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
    row.status = status.value
    row.error = truncate_reason(error)
    db.session.commit()


def event_object(event: dict[str, Any]) -> dict[str, Any]:
    """``event.data.object``, or WebhookPayloadInvalid."""
    obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if not isinstance(obj, dict):
        raise WebhookPayloadInvalid("Invalid payload.", http_status=400)
    return obj


def is_stripe_id(value: Any) -> bool:
    """A usable Stripe id: printable ASCII that fits our columns (no NUL, at most 255)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isascii()
        and value.isprintable()
    )


def event_object_id(obj: dict[str, Any]) -> str:
    """``data.object.id``, or WebhookPayloadInvalid (400) when it is not a Stripe id."""
    value = obj.get("id")
    if not is_stripe_id(value):
        raise WebhookPayloadInvalid(
            "Invalid payload: data.object.id is not a Stripe id.", http_status=400
        )
    return value


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True)
