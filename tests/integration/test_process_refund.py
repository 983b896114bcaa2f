"""``connector process-refund`` against the sandboxes: Stripe refunds, PA02/SPA02, reversals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.demo import (
    make_order_line,
    make_product_order,
    make_refund_line,
    make_service_order,
    make_service_refund,
)
from sandbox.stripe.control import StripeControl
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Notification,
    PaymentMapping,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_stripe
from webapp.services.ledger import attempts, transitions
from webapp.services.refunds import money_job as refund_execution
from webapp.services.refunds import reversal_sync
from webapp.services.refunds import sync as refund_sync

FLAGS = {"ENABLE_PRODUCT_PAYMENT_REFUND": "true", "ENABLE_SERVICE_PAYMENT_REFUND": "true"}
PA_PATH, SPA_PATH = "/api/payment/refund", "/api/mms/refunds"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    application = make_app(**FLAGS)
    with application.app_context():
        yield application


def run_refunds(app: Flask) -> list[str]:
    """Run the command as the scheduler's CLI would; return its summary lines."""
    result = app.test_cli_runner().invoke(args=["connector", "process-refund"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.output.splitlines()


def seller(shop_id: int = 1) -> AccountMapping:
    account = get_stripe().create_account(
        {"type": "custom", "country": "FR"}, idempotency_key=f"test-acct-{shop_id}"
    )
    mapping = AccountMapping(mirakl_shop_id=shop_id, stripe_account_id=account["id"])
    db.session.add(mapping)
    db.session.commit()
    return mapping


def split(
    mapping: AccountMapping,
    charge_id: str,
    order_id: str = "O-1-A",
    amount: int = 8073,
    transfer_type: str = TransferType.PRODUCT_ORDER.value,
    status: TransferStatus = TransferStatus.CREATED,
    reason: str | None = None,
) -> StripeTransfer:
    """The order's transfer row, as the payment split leaves it (a real sandbox transfer)."""
    transfer_id = None
    if status == TransferStatus.CREATED:
        transfer_id = get_stripe().create_transfer(
            amount=amount,
            currency="eur",
            destination=mapping.stripe_account_id,
            metadata={"miraklId": order_id, "miraklShopId": mapping.mirakl_shop_id},
            idempotency_key=f"test-split-{order_id}",
            source_transaction=charge_id,
        )["id"]
    row = StripeTransfer(
        mirakl_id=order_id,
        type=transfer_type,
        account_mapping_id=mapping.id,
        transfer_id=transfer_id,
        transaction_id=charge_id,
        amount=amount,
        currency="eur",
        mirakl_shop_id=mapping.mirakl_shop_id,
    )
    transitions.create(row, status, reason, actor="test")
    db.session.commit()
    return row


def refund_row(mirakl_refund_id: str = "1100") -> StripeRefund:
    return db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == mirakl_refund_id)
    ).scalar_one()


def reversal_row(mirakl_id: str = "1100") -> StripeTransfer:
    return db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.type == TransferType.REFUND.value, StripeTransfer.mirakl_id == mirakl_id
        )
    ).scalar_one()


def puts(mirakl: MiraklControl, path: str) -> list[dict[str, Any]]:
    return mirakl.requests(path=path, method="PUT")


def stripe_refunds(stripe: StripeControl) -> list[dict[str, Any]]:
    return stripe.objects("refunds")


def product_order_with_refund(refund_id: str = "1100", **refund: Any) -> dict[str, Any]:
    return make_product_order("O-1-A", refunds=[make_refund_line(refund_id, **refund)])


# ---------------------------------------------------------------- end to end


def test_product_refund_end_to_end(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    order_split = split(seller(), charge["id"])
    mirakl.add_orders([product_order_with_refund()])

    lines = run_refunds(app)

    row = refund_row()
    assert (row.status, row.status_reason, row.amount, row.currency) == (
        "REFUND_CREATED",
        None,
        1234,
        "eur",
    )
    assert (row.transaction_id, row.mirakl_order_id, row.mirakl_order_line_id) == (
        charge["id"],
        "O-1-A",
        "O-1-A-1",
    )
    assert row.mirakl_validation_time is not None
    [stripe_refund] = stripe_refunds(stripe)
    assert (stripe_refund["id"], stripe_refund["amount"], stripe_refund["charge"]) == (
        row.stripe_refund_id,
        1234,
        charge["id"],
    )
    assert stripe_refund["metadata"]["miraklRefundId"] == "1100"
    [refund_post] = stripe.requests(path_prefix="/v1/refunds", method="POST")
    assert refund_post["idempotency_key"] == "mirakl-connector:refund:1100:0"
    [pa02] = puts(mirakl, PA_PATH)
    assert pa02["body"] == {
        "refunds": [
            {
                "refund_id": "1100",
                "amount": 12.34,
                "currency_iso_code": "EUR",
                "payment_status": "OK",
                "transaction_number": row.stripe_refund_id,
            }
        ]
    }
    reversal = reversal_row()
    assert (reversal.status, reversal.amount, reversal.transaction_id, reversal.currency) == (
        "TRANSFER_CREATED",
        1111,
        order_split.transfer_id,
        "eur",
    )
    [stripe_reversal] = stripe.objects("reversals")
    assert (stripe_reversal["id"], stripe_reversal["amount"], stripe_reversal["transfer"]) == (
        reversal.transfer_id,
        1111,
        order_split.transfer_id,
    )
    assert stripe_reversal["metadata"]["miraklId"] == "1100"
    assert lines == [
        "product refunds: 1 fetched, 1 REFUND_PENDING",
        "service refunds: nothing to do",
        "refund jobs: 1 dispatched",
        "reversals: 1 TRANSFER_PENDING",
        "reversal jobs: 1 dispatched",
    ]

    # Mirakl no longer lists it: the next run moves no money.
    assert run_refunds(app)[0] == "product refunds: nothing to do"
    assert len(stripe_refunds(stripe)) == 1
    assert len(stripe.objects("reversals")) == 1


def test_service_refund_end_to_end(app, mirakl, stripe):
    charge = stripe.create_charge(amount=1814, currency="eur")
    order_split = split(seller(), charge["id"], "S-1-A", 1415, TransferType.SERVICE_ORDER.value)
    mirakl.add_service_orders(
        [make_service_order("S-1-A", refunds=[make_service_refund("2200", "12.34", "1.23")])]
    )

    run_refunds(app)

    row = refund_row("2200")
    assert (row.status, row.type, row.amount, row.transaction_id) == (
        "REFUND_CREATED",
        "REFUND_SERVICE_ORDER",
        1234,
        charge["id"],
    )
    assert (row.mirakl_order_id, row.mirakl_commercial_order_id) == ("S-1-A", "S-1")
    [spa02] = puts(mirakl, SPA_PATH)
    assert spa02["body"] == [
        {
            "id": "2200",
            "order_id": "S-1-A",
            "amount": 12.34,
            "currency_code": "EUR",
            "state": "OK",
            "transaction_number": row.stripe_refund_id,
        }
    ]
    assert [r["amount"] for r in stripe_refunds(stripe)] == [1234]
    reversal = reversal_row("2200")
    assert (reversal.status, reversal.amount, reversal.transaction_id) == (
        "TRANSFER_CREATED",
        1111,
        order_split.transfer_id,
    )
    assert [(r["amount"], r["transfer"]) for r in stripe.objects("reversals")] == [
        (1111, order_split.transfer_id)
    ]


def test_refund_before_split_waits_then_reverses(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    mapping = seller()
    db.session.add(
        PaymentMapping(
            mirakl_commercial_order_id="O-1", stripe_charge_id=charge["id"], status="captured"
        )
    )
    db.session.commit()
    mirakl.add_orders([product_order_with_refund()])

    run_refunds(app)

    assert refund_row().status == "REFUND_CREATED"
    assert refund_row().transaction_id == charge["id"]
    reversal = reversal_row()
    assert (reversal.status, reversal.status_reason) == (
        "TRANSFER_ON_HOLD",
        "Payment split has to occur before the transfer can be reversed for a refund",
    )
    assert stripe.objects("reversals") == []

    order_split = split(mapping, charge["id"])
    lines = run_refunds(app)

    reversal = reversal_row()
    assert (reversal.status, reversal.amount, reversal.transaction_id) == (
        "TRANSFER_CREATED",
        1111,
        order_split.transfer_id,
    )
    assert [r["amount"] for r in stripe.objects("reversals")] == [1111]
    assert "reversals: 1 TRANSFER_PENDING" in lines
    assert len(stripe_refunds(stripe)) == 1


def test_refund_on_an_aborted_split_does_not_wait(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    split(
        seller(),
        charge["id"],
        status=TransferStatus.ABORTED,
        reason="Order cannot be processed, status is REFUSED",
    )
    mirakl.add_orders([product_order_with_refund()])

    run_refunds(app)

    assert refund_row().status == "REFUND_CREATED"
    reversal = reversal_row()
    assert (reversal.status, reversal.status_reason) == (
        "TRANSFER_ABORTED",
        "Payment split of order O-1-A was aborted (Order cannot be processed, status is "
        "REFUSED): no transfer to reverse",
    )
    assert stripe.objects("reversals") == []


# ---------------------------------------------------------------- Mirakl refusals


def test_pa02_refused_then_revalidated_without_a_second_refund(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    split(seller(), charge["id"])
    mirakl.add_orders([product_order_with_refund()])
    mirakl.set_faults(sequence=[200, 400], paths=[PA_PATH])  # PA12 answers, PA02 refuses

    run_refunds(app)

    row = refund_row()
    assert row.status == "REFUND_FAILED"
    assert row.status_reason == "PA02 PUT /api/payment/refund: HTTP 400 Injected error"
    assert row.stripe_refund_id == stripe_refunds(stripe)[0]["id"]
    assert reversal_row().status_reason == "Refund 1100 has yet to be validated"
    [note] = db.session.execute(select(Notification)).scalars()
    payload = json.loads(note.payload)
    assert note.type == "refund.failed"
    assert payload == {
        "internalId": row.id,
        "miraklOrderId": "O-1-A",
        "miraklRefundId": "1100",
        "stripeRefundId": row.stripe_refund_id,
        "stripeReversalId": None,
        "transactionId": charge["id"],
        "amount": 1234,
        "currency": "eur",
        "status": "REFUND_FAILED",
        "failedReason": "PA02 PUT /api/payment/refund: HTTP 400 Injected error",
        "type": "REFUND_PRODUCT_ORDER",
    }

    run_refunds(app)  # PA12 lists it again: validated, not refunded again

    row = refund_row()
    assert (row.status, row.status_reason) == ("REFUND_CREATED", None)
    assert len(stripe_refunds(stripe)) == 1
    assert len(stripe.requests(path_prefix="/v1/refunds", method="POST")) == 1
    assert [e["status"] for e in puts(mirakl, PA_PATH)] == [400, 204]
    assert reversal_row().status == "TRANSFER_CREATED"


def test_console_retry_of_a_failed_validation(app, mirakl, stripe):
    charge = stripe.create_charge(amount=1814, currency="eur")
    split(seller(), charge["id"], "S-1-A", 1415, TransferType.SERVICE_ORDER.value)
    mirakl.add_service_orders([make_service_order("S-1-A", refunds=[make_service_refund("2200")])])
    mirakl.set_faults(sequence=[200, 400], paths=[SPA_PATH])
    run_refunds(app)
    row = refund_row("2200")
    assert row.status == "REFUND_FAILED"

    assert refund_sync.retry_refunds([row.id], actor="operator@example.com") == [row.id]
    refund_execution.execute_refund(row.id)

    db.session.expire_all()
    assert refund_row("2200").status == "REFUND_CREATED"
    assert len(stripe_refunds(stripe)) == 1
    reversal = reversal_row("2200")
    retried = reversal_sync.retry_reversals([reversal.id], actor="operator@example.com")
    assert retried == [reversal.id]
    assert reversal_row("2200").amount == 1111


def test_already_validated_on_mirakl_counts_as_success(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    split(seller(), charge["id"])
    mirakl.add_orders([product_order_with_refund()])
    refund_sync.sync_product_refunds()
    row = refund_row()
    assert row.status == "REFUND_PENDING"
    # Someone validates the refund on Mirakl before our job gets to it.
    mirakl.add_orders([product_order_with_refund(state="REFUNDED")])

    refund_execution.execute_refund(row.id)

    db.session.expire_all()
    assert refund_row().status == "REFUND_CREATED"
    [pa02] = puts(mirakl, PA_PATH)
    assert pa02["status"] == 400
    assert len(stripe_refunds(stripe)) == 1


# ---------------------------------------------------------------- crashes


@pytest.mark.parametrize("stored", [True, False], ids=["refund id stored", "refund id lost"])
def test_crash_between_stripe_refund_and_pa02_refunds_once(make_app, mirakl, stripe, stored):
    app = make_app(PENDING_RECHECK_AFTER="0", **FLAGS)
    with app.app_context():
        charge = stripe.create_charge(amount=8472, currency="eur")
        split(seller(), charge["id"])
        mirakl.add_orders([product_order_with_refund()])
        refund_sync.sync_product_refunds()
        claim = attempts.claim(
            StripeRefund,
            refund_row().id,
            pending="REFUND_PENDING",
            operation="refund",
            mirakl_id="1100",
        )
        if stored:
            assert refund_execution.refund_in_stripe(claim)  # then the worker dies before PA02
        else:  # the worker dies before it could store the refund id
            get_stripe().create_refund(
                charge["id"], 1234, metadata={"miraklRefundId": "1100"}, idempotency_key=claim.key
            )
        db.session.expire_all()
        row = refund_row()
        assert (row.status, row.attempted_at is not None) == ("REFUND_PENDING", True)
        assert bool(row.stripe_refund_id) is stored

        run_refunds(app)

        row = refund_row()
        assert row.status == "REFUND_CREATED"
        [stripe_refund] = stripe_refunds(stripe)
        assert row.stripe_refund_id == stripe_refund["id"]
        assert [e["body"]["refunds"][0]["transaction_number"] for e in puts(mirakl, PA_PATH)] == [
            stripe_refund["id"]
        ]
        assert reversal_row().status == "TRANSFER_CREATED"


# ---------------------------------------------------------------- reversal limits


def test_reversal_never_above_what_is_left_on_the_transfer(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    order_split = split(seller(), charge["id"], amount=1500)
    get_stripe().create_reversal(
        order_split.transfer_id, 1000, metadata={"miraklId": "manual"}, idempotency_key="manual"
    )
    mirakl.add_orders([product_order_with_refund()])

    run_refunds(app)

    assert refund_row().status == "REFUND_CREATED"
    reversal = reversal_row()
    assert (reversal.status, reversal.amount, reversal.status_reason) == (
        "TRANSFER_ON_HOLD",
        1111,
        f"Reversal of 1111 is more than what is left on transfer {order_split.transfer_id}: 500",
    )
    assert [r["amount"] for r in stripe.objects("reversals")] == [1000]
    assert (
        stripe.requests(
            path_prefix=f"/v1/transfers/{order_split.transfer_id}/reversals", method="POST"
        )[-1]["idempotency_key"]
        == "manual"
    )


def test_refund_covered_by_commission_is_not_reversed(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    split(seller(), charge["id"])
    mirakl.add_orders([product_order_with_refund(amount="1.00", commission_total_amount="1.23")])

    run_refunds(app)

    assert refund_row().status == "REFUND_CREATED"
    reversal = reversal_row()
    assert (reversal.status, reversal.status_reason) == (
        "TRANSFER_ABORTED",
        "Amount must be positive, input was: -23 (refund 100 − refunded commission 123)",
    )
    assert stripe.objects("reversals") == []


# ---------------------------------------------------------------- payments and bad input


def test_uncaptured_payment_is_canceled_then_refund_aborted(app, mirakl, stripe):
    charge = stripe.create_charge(
        amount=8472, currency="eur", captured=False, with_payment_intent=True
    )
    split(seller(), charge["id"], status=TransferStatus.ON_HOLD, reason="not yet")
    mirakl.add_orders([product_order_with_refund()])

    run_refunds(app)

    row = refund_row()
    assert (row.status, row.status_reason) == (
        "REFUND_ON_HOLD",
        f"Payment {charge['id']} is not ready yet, status is requires_capture",
    )
    [cancel] = stripe.requests(path_prefix="/v1/payment_intents/", method="POST")
    assert cancel["path"] == f"/v1/payment_intents/{charge['payment_intent']}/cancel"
    assert cancel["idempotency_key"] == (
        f"mirakl-connector:cancel-payment-intent:{charge['payment_intent']}:0"
    )

    run_refunds(app)

    row = refund_row()
    assert (row.status, row.status_reason) == (
        "REFUND_ABORTED",
        f"Payment {charge['id']} has been canceled",
    )
    # Only the release of the authorization by the cancel; no refund of ours.
    assert [(r["amount"], r["metadata"].get("miraklRefundId")) for r in stripe_refunds(stripe)] == [
        (8472, None)
    ]
    assert reversal_row().status_reason == "Refund 1100 has been aborted"
    assert reversal_row().status == "TRANSFER_ABORTED"


def test_bad_refunds_get_a_reason_and_the_run_goes_on(app, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")
    small = stripe.create_charge(amount=1000, currency="eur")
    mapping = seller()
    split(mapping, charge["id"])
    split(mapping, small["id"], "O-2-A", 800)
    no_line = make_order_line(None, "12.34", refunds=[make_refund_line("3300")])
    mirakl.add_orders(
        [
            product_order_with_refund(),
            make_product_order("O-2-A", refunds=[make_refund_line("2200", "99.99")]),
            make_product_order("O-3-A", lines=[no_line]),
        ]
    )

    lines = run_refunds(app)

    assert refund_row("1100").status == "REFUND_CREATED"
    too_much = refund_row("2200")
    assert (too_much.status, too_much.status_reason) == (
        "REFUND_ABORTED",
        f"Refund amount 9999 is more than what is left to refund on payment {small['id']}: 1000",
    )
    lineless = refund_row("3300")
    assert (lineless.status, lineless.status_reason) == (
        "REFUND_ON_HOLD",
        "Refund 3300 has no order line in PA12",
    )
    assert [r["amount"] for r in stripe_refunds(stripe)] == [1234]
    assert lines[0] == (
        "product refunds: 3 fetched, 1 REFUND_PENDING, 1 REFUND_ABORTED, 1 REFUND_ON_HOLD"
    )


def test_disabled_by_default(make_app, mirakl):
    app = make_app()
    with app.app_context():
        assert run_refunds(app) == ["refunds: disabled (ENABLE_*_PAYMENT_REFUND are false)"]
    assert mirakl.requests() == []


def test_tax_split_reverses_the_refunded_tax_from_the_tax_transfer(make_app, mirakl, stripe):
    tax_account = "acct_tax_placeholder"
    app = make_app(ENABLE_PAYMENT_TAX_SPLIT="true", STRIPE_TAX_ACCOUNT=tax_account, **FLAGS)
    with app.app_context():
        charge = stripe.create_charge(amount=8472, currency="eur")
        seller_split = split(seller(1), charge["id"], amount=6739)
        tax_split = split(seller(0), charge["id"], "O-1-A_TAX", 1334)
        mirakl.add_orders([product_order_with_refund(taxes=[("0.20", "ECO"), ("0.14", "EXP")])])

        run_refunds(app)

        seller_reversal, tax_reversal = reversal_row("1100"), reversal_row("1100_TAX")
        assert (seller_reversal.status, seller_reversal.amount) == ("TRANSFER_CREATED", 1077)
        assert (tax_reversal.status, tax_reversal.amount) == ("TRANSFER_CREATED", 34)
        assert sorted((r["transfer"], r["amount"]) for r in stripe.objects("reversals")) == sorted(
            [(seller_split.transfer_id, 1077), (tax_split.transfer_id, 34)]
        )
        assert [r["amount"] for r in stripe_refunds(stripe)] == [1234]


def test_payment_intent_is_refunded_on_its_latest_charge(app, mirakl, stripe):
    intent = stripe.create_payment_intent(amount=8472, currency="eur", status="succeeded")
    seller()
    db.session.add(
        PaymentMapping(
            mirakl_commercial_order_id="O-1", stripe_charge_id=intent["id"], status="captured"
        )
    )
    db.session.commit()
    mirakl.add_orders([product_order_with_refund()])

    run_refunds(app)

    row = refund_row()
    assert (row.status, row.transaction_id) == ("REFUND_CREATED", intent["latest_charge"])
    assert [(r["charge"], r["amount"]) for r in stripe_refunds(stripe)] == [
        (intent["latest_charge"], 1234)
    ]
