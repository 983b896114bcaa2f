"""Operator notifications over real HTTP: payloads, retries, the endpoint-down e-mail, cooldown.

The operator's endpoint is a real local HTTP server (``Receiver``) that records every POST and
answers what each test tells it to; e-mails go to the real SMTP sink (``smtp`` fixture).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from sandbox.mirakl.demo import make_shop
from sandbox.stripe.events import make_event, sign_payload
from webapp.extensions import db
from webapp.jobs.runner import run_job
from webapp.models import (
    AccountMapping,
    Lease,
    Notification,
    PayoutStatus,
    RefundStatus,
    RefundType,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger import notices, transitions
from webapp.services.notify import outbox as notifications
from webapp.services.notify.alerts import ENDPOINT_DOWN_LEASE, ENDPOINT_DOWN_SUBJECT
from webapp.services.queueing.queues import NOTIFICATIONS_QUEUE, get_queue, get_redis


class Receiver:
    """A tiny operator endpoint: records POSTs; answers ``statuses`` in turn (then the last)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = [200]
        self.hang_for = 0.0  # seconds to wait before answering
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "json": json.loads(body),
                    }
                )
                if receiver.hang_for:
                    time.sleep(receiver.hang_for)
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                answer = b'{"ok": true}' if status < 300 else b"operator endpoint exploded"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up waiting (timeout test)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/connector"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    handle = Receiver()
    yield handle
    handle.stop()


@pytest.fixture
def notify_app(make_app, receiver, smtp):
    """An app that notifies ``receiver`` and e-mails the SMTP sink, with its context pushed."""
    application = make_app(
        OPERATOR_NOTIFICATION_URL=receiver.url,
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
        TECHNICAL_ALERT_EMAIL_FROM="connector@example.com",
    )
    with application.app_context():
        yield application


def _mapping(shop_id: int = 2001, account: str = "acct_seller1") -> AccountMapping:
    mapping = AccountMapping(mirakl_shop_id=shop_id, stripe_account_id=account)
    db.session.add(mapping)
    db.session.flush()
    return mapping


def _failed_transfer(mapping: AccountMapping | None = None, **fields) -> StripeTransfer:
    values = dict(
        mirakl_id="1234-A",
        type=TransferType.PRODUCT_ORDER.value,
        amount=1234,
        currency="eur",
        transaction_id="ch_123",
        mirakl_shop_id=2001,
        account_mapping=mapping,
    )
    row = StripeTransfer(**{**values, **fields})
    transitions.create(row, TransferStatus.PENDING)
    assert transitions.transition(row, TransferStatus.FAILED, "Stripe refused: insufficient funds")
    db.session.commit()
    return row


def _failed_refund() -> StripeRefund:
    row = StripeRefund(
        mirakl_refund_id="1105",
        mirakl_order_id="1234-A",
        mirakl_commercial_order_id="1234",
        type=RefundType.PRODUCT_ORDER.value,
        amount=500,
        currency="eur",
        transaction_id="ch_123",
        stripe_refund_id="re_1",
    )
    transitions.create(row, RefundStatus.PENDING)
    reversal = StripeTransfer(
        mirakl_id="1105",
        type=TransferType.REFUND.value,
        amount=450,
        currency="eur",
        transfer_id="trr_9",
        mirakl_shop_id=2001,
    )
    transitions.create(reversal, TransferStatus.CREATED)
    assert transitions.transition(row, RefundStatus.FAILED, "PA02: refund 1105 was rejected")
    db.session.commit()
    return row


def _failed_payout(mapping: AccountMapping) -> StripePayout:
    row = StripePayout(
        mirakl_invoice_id=77,
        amount=99999,
        currency="usd",
        account_mapping=mapping,
        mirakl_shop_id=mapping.mirakl_shop_id,
    )
    transitions.create(row, PayoutStatus.PENDING)
    assert transitions.transition(row, PayoutStatus.CREATED, "Payout created", payout_id="po_42")
    assert transitions.transition(
        row, PayoutStatus.FAILED, "account_closed: The bank account has been closed"
    )
    db.session.commit()
    return row


def _notes() -> list[Notification]:
    db.session.expire_all()
    return list(db.session.execute(select(Notification).order_by(Notification.id)).scalars())


def _drain_queue() -> None:
    SimpleWorker([get_queue(NOTIFICATIONS_QUEUE)], connection=get_redis()).work(burst=True)


# ---------------------------------------------------------------- payloads


def test_transfer_failed_payload(notify_app, receiver):
    row = _failed_transfer(_mapping())

    assert notifications.flush_outbox(inline=True) == 1

    assert receiver.requests == [
        {
            "path": "/hooks/connector",
            "content_type": "application/json",
            "json": {
                "type": "transfer.failed",
                "payload": {
                    "internalId": row.id,
                    "miraklId": "1234-A",
                    "type": "TRANSFER_PRODUCT_ORDER",
                    "stripeAccountId": "acct_seller1",
                    "miraklShopId": 2001,
                    "transferId": None,
                    "transactionId": "ch_123",
                    "amount": 1234,
                    "status": "TRANSFER_FAILED",
                    "failedReason": "Stripe refused: insufficient funds",
                    "currency": "eur",
                },
            },
        }
    ]
    [note] = _notes()
    assert (note.type, note.status, note.attempts) == ("transfer.failed", "sent", 1)
    assert note.sent_at is not None and note.next_attempt_at is None


def test_transfer_failed_payload_without_mapping(notify_app, receiver):
    _failed_transfer(None, mirakl_shop_id=2009)

    notifications.flush_outbox(inline=True)

    payload = receiver.requests[0]["json"]["payload"]
    assert (payload["stripeAccountId"], payload["miraklShopId"]) == (None, 2009)


def test_refund_failed_payload(notify_app, receiver):
    row = _failed_refund()

    notifications.flush_outbox(inline=True)

    assert [r["json"] for r in receiver.requests] == [
        {
            "type": "refund.failed",
            "payload": {
                "internalId": row.id,
                "miraklOrderId": "1234-A",
                "miraklRefundId": "1105",
                "stripeRefundId": "re_1",
                "stripeReversalId": "trr_9",
                "transactionId": "ch_123",
                "amount": 500,
                "currency": "eur",
                "status": "REFUND_FAILED",
                "failedReason": "PA02: refund 1105 was rejected",
                "type": "REFUND_PRODUCT_ORDER",
            },
        }
    ]


def test_payout_failed_payload(notify_app, receiver):
    row = _failed_payout(_mapping())

    notifications.flush_outbox(inline=True)

    assert [r["json"] for r in receiver.requests] == [
        {
            "type": "payout.failed",
            "payload": {
                "internalId": row.id,
                "amount": 99999,
                "currency": "usd",
                "miraklInvoiceId": 77,
                "stripePayoutId": "po_42",
                "payoutId": "po_42",
                "status": "PAYOUT_FAILED",
                "failedReason": "account_closed: The bank account has been closed",
            },
        }
    ]


def test_account_updated_payload_sent_by_a_queued_job(notify_app, receiver):
    notices.record_account_updated(2001, "acct_seller1", "evt_1")
    notices.record_account_updated(2002, "acct_seller2", "evt_2")
    db.session.commit()

    assert notifications.flush_outbox(inline=False) == 2
    assert notifications.flush_outbox(inline=False) == 0  # "notify-<id>" is already queued
    assert receiver.requests == []  # nothing is sent until a worker runs the jobs
    _drain_queue()

    assert [r["json"] for r in receiver.requests] == [
        {
            "type": "account.updated",
            "payload": {"miraklShopId": 2001, "stripeUserId": "acct_seller1"},
        },
        {
            "type": "account.updated",
            "payload": {"miraklShopId": 2002, "stripeUserId": "acct_seller2"},
        },
    ]
    assert [n.status for n in _notes()] == ["sent", "sent"]


def test_failure_is_notified_once_not_on_later_saves(notify_app, receiver):
    row = _failed_transfer(_mapping())
    notifications.flush_outbox(inline=True)
    # Later saves of the FAILED row notify nothing (the reference notified on every save).
    row.transaction_id = "ch_456"
    db.session.commit()
    notifications.flush_outbox(inline=True)
    assert len(receiver.requests) == 1

    # A new failure after a retry is a new notification.
    assert transitions.transition(row, TransferStatus.PENDING, "retried")
    assert transitions.transition(row, TransferStatus.FAILED, "Stripe refused a third time")
    db.session.commit()
    notifications.flush_outbox(inline=True)
    assert [r["json"]["payload"]["failedReason"] for r in receiver.requests] == [
        "Stripe refused: insufficient funds",
        "Stripe refused a third time",
    ]


def test_sent_rows_are_never_sent_twice(notify_app, receiver):
    _failed_transfer(_mapping())
    [note] = _notes()

    assert notifications.deliver_notification(note.id, max_wait=0) == "sent"
    assert notifications.deliver_notification(note.id, max_wait=0) == "skipped"
    assert notifications.flush_outbox(inline=True) == 0
    assert len(receiver.requests) == 1


def test_no_url_means_nothing_is_sent(make_app, receiver):
    application = make_app()  # OPERATOR_NOTIFICATION_URL empty: notifications are disabled
    with application.app_context():
        _failed_transfer(_mapping())
        assert notifications.flush_outbox(inline=True) == 0
        assert notifications.flush_outbox(inline=False) == 0
        [note] = _notes()
        assert (note.status, note.attempts) == ("pending", 0)
    assert receiver.requests == []


def test_job_runs_flush_the_outbox(notify_app, receiver):
    def failing_work(ctx):
        _failed_transfer(_mapping())
        ctx.report("work", {"failed": 1})

    run, _ = run_job("test-job", failing_work, trigger="cli", inline=True)

    assert run.outcome == "succeeded"
    assert [r["json"]["type"] for r in receiver.requests] == ["transfer.failed"]
    assert [n.status for n in _notes()] == ["sent"]


def _onboarded_account(application, mirakl, stripe) -> str:
    """Shop 1 onboarded the real way (sync-onboarding), its Stripe account now complete."""
    mirakl.add_shops([make_shop(1)])
    result = application.test_cli_runner().invoke(args=["connector", "sync-onboarding"])
    assert result.exit_code == 0, result.output
    acct = db.session.execute(select(AccountMapping)).scalar_one().stripe_account_id
    stripe.complete_onboarding(acct)
    return acct


def _deliver_account_updated(application, stripe, acct: str):
    obj = next(a for a in stripe.objects("accounts") if a["id"] == acct)
    payload = json.dumps(make_event("account.updated", obj, account=acct)).encode()
    return application.test_client().post(
        "/api/public/webhook/sellers",
        data=payload,
        headers={"Stripe-Signature": sign_payload(payload, "whsec_sellers")},
        content_type="application/json",
    )


def test_webhook_queues_its_notification_never_sends_it_in_the_request(
    notify_app, receiver, mirakl, stripe
):
    acct = _onboarded_account(notify_app, mirakl, stripe)

    response = _deliver_account_updated(notify_app, stripe, acct)

    assert response.status_code == 200
    assert receiver.requests == []
    [note] = _notes()
    assert get_queue(NOTIFICATIONS_QUEUE).job_ids == [f"notify-{note.id}"]
    _drain_queue()
    assert [r["json"] for r in receiver.requests] == [
        {"type": "account.updated", "payload": {"miraklShopId": 1, "stripeUserId": acct}}
    ]


def test_webhook_without_redis_leaves_the_notification_to_the_next_job_run(
    make_app, receiver, mirakl, stripe
):
    application = make_app(
        OPERATOR_NOTIFICATION_URL=receiver.url, REDIS_URL="redis://127.0.0.1:9/0"
    )
    with application.app_context():
        acct = _onboarded_account(application, mirakl, stripe)

        response = _deliver_account_updated(application, stripe, acct)

        assert response.status_code == 200  # the effect is committed; Redis is not needed
        assert [n.status for n in _notes()] == ["pending"]
        assert receiver.requests == []
        # The next CLI run (every minute for sync-onboarding) sends it, in-process.
        result = application.test_cli_runner().invoke(args=["connector", "sync-onboarding"])
        assert result.exit_code == 0, result.output
        assert [n.status for n in _notes()] == ["sent"]
    assert [r["json"]["payload"] for r in receiver.requests] == [
        {"miraklShopId": 1, "stripeUserId": acct}
    ]


# ---------------------------------------------------------------- retries and the down e-mail


def test_retries_until_a_2xx(notify_app, receiver, smtp):
    receiver.statuses = [500, 503, 200]
    _failed_transfer(_mapping())

    notifications.flush_outbox(inline=True)

    assert len(receiver.requests) == 3
    [note] = _notes()
    assert (note.status, note.attempts) == ("sent", 3)
    assert note.last_error == "HTTP 503 from the notification endpoint: operator endpoint exploded"
    assert smtp.messages == []


def test_retries_then_the_endpoint_down_email(notify_app, receiver, smtp):
    receiver.statuses = [500]
    row = _failed_transfer(_mapping())

    notifications.flush_outbox(inline=True)

    assert len(receiver.requests) == 4  # the first try and 3 retries (NOTIFICATION_RETRY_DELAYS)
    [note] = _notes()
    assert (note.status, note.attempts) == ("failed", 4)
    assert note.last_error == "HTTP 500 from the notification endpoint: operator endpoint exploded"
    [mail] = smtp.messages
    assert mail["Subject"] == ENDPOINT_DOWN_SUBJECT
    assert mail["To"] == "ops@example.com"
    assert mail["From"] == "connector@example.com"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert receiver.url in part
        assert "could not reach it after 4 tries" in part
        assert "HTTP 500 from the notification endpoint" in part
        assert "operator endpoint exploded" in part
        assert f"notification #{note.id}" in part
    assert f'"internalId": {row.id},' in text
    assert '"failedReason": "Stripe refused: insufficient funds",' in text
    assert '"type": "transfer.failed"' in text


def test_retries_in_a_worker_then_the_endpoint_down_email(notify_app, receiver, smtp):
    receiver.statuses = [500]
    notices.record_account_updated(2001, "acct_seller1", "evt_1")
    db.session.commit()

    notifications.flush_outbox(inline=False)
    _drain_queue()

    assert len(receiver.requests) == 4
    assert [(n.status, n.attempts) for n in _notes()] == [("failed", 4)]
    [mail] = smtp.messages
    assert "could not reach it after 4 tries" in mail.get_body(("plain",)).get_content()


def test_unreachable_endpoint(make_app, smtp):
    application = make_app(
        OPERATOR_NOTIFICATION_URL="http://user:hunter22@127.0.0.1:9/notify?token=t0ps3cret",
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
    )
    with application.app_context():
        _failed_transfer(_mapping())
        notifications.flush_outbox(inline=True)
        [note] = _notes()
        assert (note.status, note.attempts) == ("failed", 4)
        assert note.last_error.startswith("ConnectionError: ")
    [mail] = smtp.messages
    text = mail.get_body(("plain",)).get_content()
    assert "http://127.0.0.1:9/notify?token=***" in text
    assert "ConnectionError" in text
    assert "hunter22" not in mail.as_string() and "t0ps3cret" not in mail.as_string()
    assert "t0ps3cret" not in note.last_error


def test_hanging_endpoint_times_out(notify_app, receiver, smtp, monkeypatch):
    monkeypatch.setattr(notifications, "NOTIFICATION_TIMEOUT", (1.0, 0.3))
    receiver.hang_for = 1.0
    _failed_transfer(_mapping())

    notifications.flush_outbox(inline=True)

    [note] = _notes()
    assert (note.status, note.attempts) == ("failed", 4)
    assert note.last_error.startswith("ReadTimeout: ")
    assert len(smtp.messages) == 1


def test_long_retry_delays_wait_for_the_next_flush_in_cli_runs(make_app, receiver, smtp):
    receiver.statuses = [500]
    application = make_app(
        OPERATOR_NOTIFICATION_URL=receiver.url,
        NOTIFICATION_RETRY_DELAYS="0,600",
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
    )
    with application.app_context():
        _failed_transfer(_mapping())
        notifications.flush_outbox(inline=True)
        [note] = _notes()
        # Tried twice (the 0 s retry), then waiting 600 s: a CLI run does not sleep that long.
        assert (note.status, note.attempts) == ("pending", 2)
        assert notifications.list_due_notification_ids() == []
        assert notifications.flush_outbox(inline=True) == 0
    assert len(receiver.requests) == 2
    assert smtp.messages == []


def test_endpoint_down_email_can_be_switched_off(make_app, receiver, smtp):
    receiver.statuses = [500]
    application = make_app(
        OPERATOR_NOTIFICATION_URL=receiver.url,
        MAIL_ON_NOTIFICATION_ENDPOINT_DOWN="false",
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
    )
    with application.app_context():
        _failed_transfer(_mapping())
        notifications.flush_outbox(inline=True)
        assert [n.status for n in _notes()] == ["failed"]
    assert smtp.messages == []


def _down_app(make_app, receiver, smtp, cooldown: str):
    return make_app(
        OPERATOR_NOTIFICATION_URL=receiver.url,
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
        MAIL_ON_NOTIFICATION_ENDPOINT_DOWN_COOLDOWN=cooldown,
    )


def test_cooldown_is_shared_by_all_workers(make_app, receiver, smtp):
    """Two apps (two workers, their own engines and pools) sharing one database: one e-mail."""
    receiver.statuses = [500]
    worker_a = _down_app(make_app, receiver, smtp, "10")
    worker_b = _down_app(make_app, receiver, smtp, "10")
    with worker_a.app_context():
        notices.record_account_updated(2001, "acct_seller1", "evt_1")
        notices.record_account_updated(2002, "acct_seller2", "evt_2")
        db.session.commit()
        first, second = notifications.list_due_notification_ids()

    with worker_a.app_context():
        assert notifications.deliver_notification(first, max_wait=0) == "failed"
    with worker_b.app_context():
        assert notifications.deliver_notification(second, max_wait=0) == "failed"

    assert len(receiver.requests) == 8
    assert len(smtp.messages) == 1
    with worker_b.app_context():
        lease = db.session.get(Lease, ENDPOINT_DOWN_LEASE)
        assert 9.9 * 60 < (lease.expires_at - lease.acquired_at).total_seconds() <= 10 * 60


def test_cooldown_zero_sends_every_email(make_app, receiver, smtp):
    receiver.statuses = [500]
    worker_a = _down_app(make_app, receiver, smtp, "0")
    worker_b = _down_app(make_app, receiver, smtp, "0")
    with worker_a.app_context():
        notices.record_account_updated(2001, "acct_seller1", "evt_1")
        notices.record_account_updated(2002, "acct_seller2", "evt_2")
        db.session.commit()
        first, second = notifications.list_due_notification_ids()
        notifications.deliver_notification(first, max_wait=0)
    with worker_b.app_context():
        notifications.deliver_notification(second, max_wait=0)

    assert [m["Subject"] for m in smtp.messages] == [ENDPOINT_DOWN_SUBJECT] * 2


def test_two_workers_racing_send_a_row_once(make_app, receiver):
    """Both workers see the row due; the compare-and-set lets only one of them POST it."""
    receiver.hang_for = 0.3
    apps = [make_app(OPERATOR_NOTIFICATION_URL=receiver.url) for _ in range(2)]
    with apps[0].app_context():
        notices.record_account_updated(2001, "acct_seller1", "evt_1")
        db.session.commit()
        [note_id] = notifications.list_due_notification_ids()
    outcomes: list[str] = []

    def send(application) -> None:
        with application.app_context():
            outcomes.append(notifications.deliver_notification(note_id, max_wait=0))

    threads = [threading.Thread(target=send, args=(a,)) for a in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(receiver.requests) == 1
