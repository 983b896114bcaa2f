"""The connector against a Stripe sandbox that refuses what Stripe refuses (issue 21).

Each test drives a real command over HTTP and asserts the row's status and reason, the
notification, and that nothing crashed; the last ones drive payment validation end to end
through webhooks the sandbox delivers, signed as Stripe signs them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update
from werkzeug.serving import make_server

from sandbox.mirakl.demo import make_invoice, make_product_order
from tests.seeding import create_ready_account
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Notification,
    PaymentMapping,
    StripePayout,
    StripeTransfer,
    WebhookEvent,
)
from webapp.services.clients import get_stripe

SPLIT_ON = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true"}
NO_CAPABILITY = (
    "Your destination account needs to have at least one of the following capabilities "
    "enabled: transfers, crypto_transfers, legacy_payments"
)
NO_FUNDS = "You have insufficient available funds in your Stripe account."
KEY = "mirakl_commercial_order_id"
DAY = 24 * 3600


@pytest.fixture
def split_app(make_app) -> Iterator[Flask]:
    app = make_app(**SPLIT_ON)
    with app.app_context():
        yield app


def map_shop(account_id: str, shop_id: int = 1, **fields: object) -> None:
    db.session.add(AccountMapping(mirakl_shop_id=shop_id, stripe_account_id=account_id, **fields))
    db.session.commit()


def run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["connector", *args])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    db.session.expire_all()
    return result.output


def transfer_row() -> StripeTransfer:
    return db.session.execute(select(StripeTransfer)).scalar_one()


def notes() -> list[tuple[str, dict]]:
    rows = db.session.execute(select(Notification).order_by(Notification.id)).scalars()
    return [(n.type, json.loads(n.payload)) for n in rows]


# ---------------------------------------------------------------- transfers


def test_transfer_to_an_account_without_active_transfers_fails_then_pays(split_app, mirakl, stripe):
    # The connector's own account parameters: transfers requested, onboarding not finished.
    account = get_stripe().create_account(
        {"type": "express", "capabilities": {"transfers": {"requested": True}}},
        idempotency_key="fidelity-account-1",
    )["id"]
    map_shop(account)
    charge = stripe.create_charge(amount=8472, currency="eur")["id"]
    mirakl.add_orders([make_product_order("C-1-A", transaction_number=charge)])

    assert "transfers: 1 dispatched, 1 failed" in run(split_app, "process-transfer")

    row = transfer_row()
    assert (row.status, row.status_reason, row.attempt) == ("TRANSFER_FAILED", NO_CAPABILITY, 1)
    [(kind, payload)] = notes()
    assert (kind, payload["miraklId"], payload["failedReason"]) == (
        "transfer.failed",
        "C-1-A",
        NO_CAPABILITY,
    )
    assert stripe.objects("transfers") == []

    stripe.complete_onboarding(account)  # activates what was requested
    run(split_app, "process-transfer")

    row = transfer_row()
    assert (row.status, row.status_reason) == ("TRANSFER_CREATED", None)
    (transfer,) = stripe.objects("transfers")
    assert (transfer["destination"], transfer["source_transaction"]) == (account, charge)


def test_transfer_without_payment_beyond_the_platform_balance_fails_then_pays(
    split_app, mirakl, stripe
):
    map_shop(create_ready_account("fidelity-account-2"))
    stripe.set_balance("platform", "eur", 8072)  # one cent short of the seller's 80.73
    mirakl.add_orders([make_product_order("N-1-A")])  # no transaction number: no source

    run(split_app, "process-transfer")

    row = transfer_row()
    assert row.status == "TRANSFER_FAILED"
    assert row.status_reason.startswith(NO_FUNDS)
    [(kind, payload)] = notes()
    assert kind == "transfer.failed" and payload["failedReason"].startswith(NO_FUNDS)
    assert stripe.objects("transfers") == []

    stripe.set_balance("platform", "eur", 8073)
    run(split_app, "process-transfer")

    assert transfer_row().status == "TRANSFER_CREATED"
    assert stripe.balance()["available"][0]["amount"] == 0
    keys = [r["idempotency_key"] for r in stripe.requests("/v1/transfers", method="POST")]
    assert keys == [
        "mirakl-connector:TRANSFER_PRODUCT_ORDER:N-1-A:0",
        "mirakl-connector:TRANSFER_PRODUCT_ORDER:N-1-A:1",
    ]


def test_a_lost_transfer_is_found_after_its_key_expired_and_not_paid_twice(
    make_app, mirakl, stripe
):
    app = make_app(**SPLIT_ON, PENDING_RECHECK_AFTER="0")
    with app.app_context():
        account = create_ready_account("fidelity-account-3")
        map_shop(account)
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        mirakl.add_orders([make_product_order("E-1-A", transaction_number=charge)])
        stripe.set_faults(after_rate=1.0, paths=["/v1/transfers"], methods=["POST"], max_faults=1)

        run(app, "process-transfer")
        assert transfer_row().status == "TRANSFER_PENDING"
        (made,) = stripe.objects("transfers")

        # A day later Stripe has forgotten the key: resending it would pay a second time.
        stripe.advance_clock(DAY + 60)
        db.session.execute(
            update(StripeTransfer).values(attempted_at=utcnow() - timedelta(minutes=5))
        )
        db.session.commit()
        run(app, "process-transfer")

        row = transfer_row()
        assert (row.status, row.transfer_id) == ("TRANSFER_CREATED", made["id"])
        assert len(stripe.objects("transfers")) == 1
        assert len(stripe.requests("/v1/transfers", method="POST")) == 1


# ---------------------------------------------------------------- payouts


def test_payout_on_an_account_stripe_has_not_enabled_fails_with_a_reason(app, mirakl, stripe):
    account = create_ready_account("fidelity-account-4")
    stripe.set_account(account, payouts_enabled=False)  # e.g. new requirements came due
    stripe.set_balance(account, "eur", 100_000)
    map_shop(account, payout_enabled=True, payin_enabled=True)  # the mapping hasn't heard yet
    mirakl.add_invoices([make_invoice(1, subscription="0", other_credits="0", other_invoices="0")])

    run(app, "process-payout")

    row = db.session.execute(select(StripePayout)).scalar_one()
    assert row.status == "PAYOUT_FAILED"
    assert row.status_reason.startswith(f"Payouts are not enabled for account {account}")
    [(kind, payload)] = notes()
    assert (kind, payload["status"]) == ("payout.failed", "PAYOUT_FAILED")
    assert stripe.objects("payouts") == []


# ------------------------------------------------------- webhooks end to end


@pytest.fixture
def live_app(make_app) -> Iterator[tuple[Flask, str]]:
    """The connector served over real HTTP on 127.0.0.1, so the sandbox can deliver to it."""
    app = make_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with app.app_context():
        yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        db.session.expire_all()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("the sandbox's webhook never had its effect")


def test_payment_validation_end_to_end_through_delivered_webhooks(live_app, mirakl, stripe):
    app, url = live_app
    stripe.add_webhook_endpoint(f"{url}/api/public/webhook/operator", "whsec_operator")
    mirakl.add_orders(
        [make_product_order(f"W-1-{s}", "W-1", state="WAITING_DEBIT_PAYMENT") for s in "AB"]
    )

    charge = stripe.create_charge(
        amount=16944,
        currency="eur",
        captured=False,
        with_payment_intent=True,
        payment_intent_metadata={KEY: "W-1"},
    )

    row = wait_for(lambda: db.session.execute(select(PaymentMapping)).scalar_one_or_none())
    assert (row.stripe_charge_id, row.mirakl_commercial_order_id, row.status) == (
        charge["id"],
        "W-1",
        "to_capture",
    )
    # charge.succeeded made the mapping; payment_intent.amount_capturable_updated is answered
    # 200 "deprecated and ignored" (the reference connector's answer) and not stored.
    deliveries = wait_for(lambda: len(stripe.webhooks()["deliveries"]) == 2 and stripe.webhooks())
    assert sorted((d["type"], d["status"]) for d in deliveries["deliveries"]) == [
        ("charge.succeeded", 200),
        ("payment_intent.amount_capturable_updated", 200),
    ]
    inbox = db.session.execute(select(WebhookEvent.type, WebhookEvent.status)).all()
    assert inbox == [("charge.succeeded", "processed")]

    output = run(app, "validate-pending-debit")

    assert "pending debits: 2 fetched, 2 OK" in output
    db.session.expire_all()
    row = db.session.execute(select(PaymentMapping)).scalar_one()
    assert (row.status, row.captured_amount) == ("captured", 16944)
    (intent,) = stripe.objects("payment_intents")
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 16944)
