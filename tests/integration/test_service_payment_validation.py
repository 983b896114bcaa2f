"""Service-order payment validation (ours, ``ENABLE_SERVICE_PAYMENT_VALIDATION``), end to end:
charge webhook → SPA11 → SPA01 → capture or cancel → the service order's transfer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from sandbox.mirakl.demo import make_service_debit, make_service_order
from tests.integration.test_validate_pending_debit import mapping, pay, stripe_writes
from tests.seeding import create_ready_account
from webapp.extensions import db
from webapp.models import AccountMapping, StripeTransfer

SPA = "/api/mms/debits"
ON = {"ENABLE_SERVICE_PAYMENT_VALIDATION": "true", "ENABLE_SERVICE_PAYMENT_SPLIT": "true"}
DUE = 1814  # price 12.34 + options 2.46 + taxes 3.34 (reference worked example)


@pytest.fixture
def service_app(make_app) -> Iterator[Flask]:
    app = make_app(**ON)
    with app.app_context():
        yield app


def run(app: Flask, command: str) -> str:
    result = app.test_cli_runner().invoke(args=["connector", command])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.output


def waiting(mirakl, *orders: tuple[str, str]) -> None:
    """Service orders of commercial order S-1, each ``(id, state)``; a WAITING debit for
    each one still waiting for it."""
    mirakl.add_service_orders([make_service_order(i, "S-1", state=state) for i, state in orders])
    mirakl.add_service_debits(
        [
            make_service_debit(i, amount="18.14", state="WAITING")
            for i, state in orders
            if state == "WAITING_DEBIT_PAYMENT"
        ]
    )


def spa01_bodies(mirakl) -> list[dict]:
    return [r["body"] for r in mirakl.requests(path=SPA, method="PUT")]


def entry(order_id: str, charge_id: str, status: str = "OK") -> dict:
    return {
        "amount": 18.14,
        "currency_code": "EUR",
        "customer_id": "customer_basic",
        "order_id": order_id,
        "payment_status": status,
        "transaction_number": charge_id,
    }


def test_accepted_service_order_is_debited_captured_then_paid_to_the_seller(
    service_app, mirakl, stripe
):
    account = create_ready_account("test-svc-1")
    db.session.add(AccountMapping(mirakl_shop_id=1, stripe_account_id=account))
    db.session.commit()
    waiting(mirakl, ("S-1-A", "WAITING_DEBIT_PAYMENT"))
    charge = pay(service_app.test_client(), stripe, amount=DUE, commercial_id="S-1")
    stripe.clear_requests()

    output = run(service_app, "validate-pending-debit")

    assert spa01_bodies(mirakl) == [{"orders": [entry("S-1-A", charge["id"])]}]
    state = mirakl.state()
    assert [d["state"] for d in state["service_debits"]] == ["OK"]
    assert [o["state"] for o in state["service_orders"]] == ["ORDER_PENDING"]
    row = mapping()
    assert (row.status, row.captured_amount, row.mirakl_debit_status) == ("captured", DUE, "OK")
    assert stripe_writes(stripe) == [
        (
            f"/v1/charges/{charge['id']}/capture",
            {"amount": str(DUE)},
            f"mirakl-connector:capture:{charge['id']}:0",
        )
    ]
    assert "service pending debits: 1 fetched, 1 OK" in output
    assert "payments to capture: 1 capture" in output

    run(service_app, "process-transfer")

    transfer = db.session.execute(select(StripeTransfer)).scalar_one()
    assert (transfer.mirakl_id, transfer.status, transfer.amount) == (
        "S-1-A",
        "TRANSFER_CREATED",
        1415,
    )
    (sent,) = stripe.objects("transfers")
    assert (sent["source_transaction"], sent["destination"]) == (charge["id"], account)
    assert len(spa01_bodies(mirakl)) == 1  # nothing sent twice


def test_refused_service_order_is_released_from_the_capture(service_app, mirakl, stripe):
    waiting(mirakl, ("S-1-A", "WAITING_DEBIT_PAYMENT"), ("S-1-B", "ORDER_REFUSED"))
    charge = pay(service_app.test_client(), stripe, amount=2 * DUE, commercial_id="S-1")

    run(service_app, "validate-pending-debit")

    assert spa01_bodies(mirakl) == [{"orders": [entry("S-1-A", charge["id"])]}]
    row = mapping()
    assert (row.status, row.captured_amount) == ("captured", DUE)
    assert row.status_reason is None or "refused or canceled" in row.status_reason


def test_every_service_order_refused_cancels_the_payment(service_app, mirakl, stripe):
    waiting(mirakl, ("S-1-A", "ORDER_REFUSED"), ("S-1-B", "ORDER_CANCELLED"))
    charge = pay(
        service_app.test_client(), stripe, amount=2 * DUE, commercial_id="S-1",
        with_payment_intent=True,
    )  # fmt: skip

    run(service_app, "validate-pending-debit")

    assert spa01_bodies(mirakl) == []
    assert mapping().status == "canceled"
    (intent,) = [
        p for p in stripe.objects("payment_intents") if p["id"] == charge["payment_intent"]
    ]
    assert intent["status"] == "canceled"


def test_failed_payment_refuses_the_service_debit(service_app, mirakl, stripe):
    waiting(mirakl, ("S-1-A", "WAITING_DEBIT_PAYMENT"))
    charge = pay(
        service_app.test_client(), stripe, amount=DUE, commercial_id="S-1", status="failed"
    )

    run(service_app, "validate-pending-debit")

    assert spa01_bodies(mirakl) == [{"orders": [entry("S-1-A", charge["id"], "REFUSED")]}]
    assert [o["state"] for o in mirakl.state()["service_orders"]] == ["ORDER_CANCELLED"]
    assert (mapping().status, mapping().mirakl_debit_status) == ("failed", "REFUSED")


def test_capture_waits_for_the_service_debit(service_app, mirakl, stripe):
    # Accepted, but Mirakl has not recorded the debit yet (no mapping for SPA01 before now).
    mirakl.add_service_orders([make_service_order("S-1-A", "S-1", state="ORDER_ACCEPTED")])
    mirakl.add_service_debits([make_service_debit("S-1-A", state="PENDING")])
    pay(service_app.test_client(), stripe, amount=DUE, commercial_id="S-1")

    run(service_app, "validate-pending-debit")

    row = mapping()
    assert row.status == "to_capture"
    assert row.status_reason == "Order S-1-A is waiting for the customer debit (SPA01)"


def test_off_by_default_as_the_reference(make_app, mirakl, stripe):
    app = make_app()
    with app.app_context():
        waiting(mirakl, ("S-1-A", "WAITING_DEBIT_PAYMENT"))
        pay(app.test_client(), stripe, amount=DUE, commercial_id="S-1")

        output = run(app, "validate-pending-debit")

        assert "service pending debits" not in output
        assert spa01_bodies(mirakl) == []
        assert mirakl.requests(path="/api/mms/orders") == []
        row = mapping()
        assert row.status == "to_capture"
        assert row.status_reason == "Commercial order S-1 not found in Mirakl"
