"""Operator notifications: payloads, the outbox rows, and sending them.

Rows are written by ``transitions.transition`` in the same transaction as the move to a
failed status, so each failure is notified exactly once; sending happens later, from a job:
``flush_outbox`` runs at the end of every job run and after every webhook, and POSTs each due
PENDING row to ``OPERATOR_NOTIFICATION_URL`` (in-process for CLI runs, as one RQ job per row
on the ``notifications`` queue otherwise). A row is claimed with a compare-and-set before each
try, so two workers never both send it. A try that fails (network error or non-2xx) is
retried after ``NOTIFICATION_RETRY_DELAYS``; after the last one the row is FAILED and the
endpoint-down e-mail goes out (``alerts.send_endpoint_down_alert``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import requests
from flask import current_app
from rq.exceptions import DuplicateJobError
from sqlalchemy import or_, select, update

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    REASON_LENGTH,
    Notification,
    NotificationStatus,
)
from webapp.services.notify.alerts import redact_text, send_endpoint_down_alert
from webapp.services.notify.delivery import DeliveryResult, evaluate_response
from webapp.services.queueing.app_context import with_app_context
from webapp.services.queueing.queues import NOTIFICATIONS_QUEUE, get_queue

log = logging.getLogger(__name__)

NOTIFICATION_TIMEOUT = (5.0, 10.0)  # seconds: connect, read
IN_FLIGHT_HOLD = 120  # seconds a claimed row is hidden from other senders (> the timeouts)
INLINE_MAX_WAIT = 5.0  # seconds an in-process (CLI) sender sleeps before a retry; longer → later
FLUSH_BATCH = 500  # due rows handled per flush; the rest go with the next one


# ---------------------------------------------------------------- pure rules


def notification_body(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body POSTed to the operator: ``{"type": ..., "payload": {...}}``."""
    return {"type": type_, "payload": payload}


def retry_delay(tries_done: int, delays: Sequence[float]) -> float | None:
    """Seconds to wait before the next try after ``tries_done`` failed ones; None when spent.

    With delays (1, 5, 25) a notification is tried 4 times: at once, then 1 s, 5 s and 25 s
    after each failure, as the reference's retry policy.
    """
    if tries_done < 1 or tries_done > len(delays):
        return None
    return float(delays[tries_done - 1])


def max_tries(delays: Sequence[float]) -> int:
    """How many times a notification is tried in all: the first try plus one per delay."""
    return 1 + len(delays)


# ---------------------------------------------------------------- sending


def post_notification(url: str, body: dict[str, Any]) -> DeliveryResult:
    """POST one notification body to the operator's endpoint; never raises."""
    try:
        response = requests.post(url, json=body, timeout=NOTIFICATION_TIMEOUT)
    except requests.RequestException as exc:
        return DeliveryResult(False, error=f"{type(exc).__name__}: {_without_url(exc, url)}")
    return evaluate_response(response.status_code, response.text)


def _without_url(exc: Exception, url: str) -> str:
    # requests puts the URL, or its path and query, in its messages: never keep secrets.
    return redact_text(str(exc), url)


def list_due_notification_ids(limit: int = FLUSH_BATCH) -> list[int]:
    """Ids of PENDING notifications whose next try is due, oldest first."""
    now = utcnow()
    return list(
        db.session.execute(
            select(Notification.id)
            .where(
                Notification.status == NotificationStatus.PENDING,
                or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
            )
            .order_by(Notification.id)
            .limit(limit)
        ).scalars()
    )


def flush_outbox(*, inline: bool) -> int:
    """Send (``inline``) or enqueue one RQ job per due PENDING notification; return how many.

    Does nothing while ``OPERATOR_NOTIFICATION_URL`` is empty: the rows stay PENDING.

    Raises:
        redis.RedisError: ``inline=False`` and Redis is unreachable (the rows stay PENDING).
    """
    if not current_app.config["OPERATOR_NOTIFICATION_URL"]:
        return 0
    ids = list_due_notification_ids()
    db.session.rollback()  # end the read; each send works in its own short transactions
    if not inline:
        return enqueue_notifications(ids)
    for notification_id in ids:
        outcome = deliver_notification(notification_id, max_wait=INLINE_MAX_WAIT)
        if outcome in (NotificationStatus.PENDING, NotificationStatus.FAILED):
            # The endpoint is in trouble: leave the rest for the next run instead of
            # spending every row's timeouts in this one.
            break
    return len(ids)


def notification_job_id(notification_id: int) -> str:
    """RQ job id of a notification: the same row is never queued twice at once.

    ``notify-<id>``: RQ 3 accepts only letters, digits, ``_`` and ``-`` in job ids.
    """
    return f"notify-{notification_id}"


def enqueue_notifications(ids: Sequence[int]) -> int:
    """Queue one sending job per notification id on the notifications queue."""
    queue = get_queue(NOTIFICATIONS_QUEUE)
    queued = 0
    for notification_id in ids:
        try:
            queue.enqueue_call(
                run_notification_job,
                args=(notification_id,),
                job_id=notification_job_id(notification_id),
                unique=True,
                result_ttl=0,
                failure_ttl=IN_FLIGHT_HOLD,
                timeout=IN_FLIGHT_HOLD + 60,
            )
            queued += 1
        except DuplicateJobError:
            log.info("notification %s: already queued", notification_id)
    return queued


@with_app_context
def run_notification_job(notification_id: int) -> str:
    """Entry point of a notification job in an RQ worker: every try, sleeping in between."""
    return deliver_notification(notification_id, max_wait=float("inf"))


def deliver_notification(notification_id: int, *, max_wait: float) -> str:
    """Try one notification until it is sent, fails for good or must wait over ``max_wait``.

    Returns the row's status afterwards (``sent``, ``failed``, ``pending``), or ``skipped``
    when the row was not ours to send (already sent, or another sender holds it).
    """
    url = current_app.config["OPERATOR_NOTIFICATION_URL"]
    delays = current_app.config["NOTIFICATION_RETRY_DELAYS"]
    if not url:
        return "skipped"
    while True:
        note = _claim(notification_id)
        if note is None:
            return "skipped"
        original = notification_body(note.type, json.loads(note.payload))
        result = post_notification(url, original)
        if result.is_sent:
            _record(notification_id, NotificationStatus.SENT, sent_at=utcnow())
            log.info("notification %s (%s): sent", notification_id, note.type)
            return NotificationStatus.SENT
        delay = retry_delay(note.attempts, delays)
        if delay is None:
            _record(notification_id, NotificationStatus.FAILED, last_error=_reason(result))
            log.error(
                "notification %s (%s): failed after %s tries: %s",
                notification_id,
                note.type,
                note.attempts,
                result.error,
            )
            send_endpoint_down_alert(url, notification_id, note.attempts, result, original)
            return NotificationStatus.FAILED
        log.warning(
            "notification %s (%s): try %s failed, retrying in %ss: %s",
            notification_id,
            note.type,
            note.attempts,
            delay,
            result.error,
        )
        _record(
            notification_id,
            NotificationStatus.PENDING,
            last_error=_reason(result),
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )
        if delay > max_wait:
            return NotificationStatus.PENDING
        time.sleep(delay)


def _reason(result: DeliveryResult) -> str:
    reason = result.error or "unknown error"
    if result.response_body:
        reason = f"{reason}: {result.response_body}"
    return reason[:REASON_LENGTH]


def _claim(notification_id: int) -> Notification | None:
    """Take a due PENDING row for one try (compare-and-set on status and attempts)."""
    now = utcnow()
    note = db.session.get(Notification, notification_id, populate_existing=True)
    if note is None or note.status != NotificationStatus.PENDING:
        db.session.rollback()
        return None
    if note.next_attempt_at is not None and note.next_attempt_at > now:
        db.session.rollback()
        return None
    won = db.session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == NotificationStatus.PENDING,
            Notification.attempts == note.attempts,
        )
        .values(attempts=note.attempts + 1, next_attempt_at=now + timedelta(seconds=IN_FLIGHT_HOLD))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if won != 1:
        return None
    return db.session.get(Notification, notification_id, populate_existing=True)


def _record(notification_id: int, status: NotificationStatus, **values: Any) -> None:
    if status is not NotificationStatus.PENDING:
        values.setdefault("next_attempt_at", None)
    db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(status=status, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
