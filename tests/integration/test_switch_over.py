"""The switch-over: import a running PHP connector's database, then run every job.

The Stripe sandbox holds what the PHP connector did (accounts with its metadata, transfers,
a reversal, refunds, payouts, including ones its crashed workers made without recording
them); the reference database says so. After ``import-reference`` every job runs against the
sandboxes: no second account, nothing paid twice, and Mirakl asked from the checkpoints on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from sandbox.mirakl.demo import make_invoice, make_product_order, make_refund_line, make_shop
from sandbox.reference_db import (
    CHECKPOINTS,
    OLD,
    create_reference_db,
    drop_reference_db,
    insert,
    set_checkpoints,
)
from tests.conftest import PG_SERVER
from tests.seeding import create_ready_account
from webapp.extensions import db
from webapp.models import StripePayout, StripeRefund, StripeTransfer
from webapp.services.clients import get_stripe

FLAGS = {
    "ENABLE_PRODUCT_PAYMENT_SPLIT": "true",
    "ENABLE_PRODUCT_PAYMENT_REFUND": "true",
    "MIRAKL_CUSTOM_FIELD_CODE": "stripe-url",
}
JOBS = (
    "sync-onboarding",
    "validate-pending-debit",
    "process-transfer",
    "process-refund",
    "process-payout",
)
AFTER_CHECKPOINTS = "2024-01-05T10:30:00Z"  # Mirakl dates newer than every checkpoint
ORDER_AMOUNT, CHARGE_AMOUNT = 8073, 8472  # minor units: the default order's seller share
STAMPS = {"creation_datetime": OLD, "modification_datetime": OLD}


@pytest.fixture
def switch_app(make_app) -> Iterator[Flask]:
    app = make_app(**FLAGS)
    with app.app_context():
        yield app


@pytest.fixture
def reference() -> Iterator[str]:
    url = create_reference_db(PG_SERVER)
    yield url
    drop_reference_db(url)


def php_account(stripe, shop_id: int) -> str:
    """A seller account as the PHP connector made it (its metadata), onboarded and funded."""
    account = create_ready_account(
        f"php-account-{shop_id}", metadata={"miraklShopId": str(shop_id)}
    )
    stripe.set_account(account, charges_enabled=True, payouts_enabled=True, details_submitted=True)
    stripe.set_balance(account, "eur", 100_000)
    return account


def php_transfer(charge: str, account: str, order_id: str) -> str:
    return get_stripe().create_transfer(
        amount=ORDER_AMOUNT,
        currency="eur",
        destination=account,
        source_transaction=charge,
        metadata={"miraklId": order_id, "miraklShopId": 11},
        idempotency_key=f"php-{order_id}",
    )["id"]


def build_php_connector(reference: str, stripe, mirakl) -> dict[str, str]:
    """What a PHP connector 4.1.1 left in Stripe, Mirakl and its database; the ids made."""
    seller, other = php_account(stripe, 11), php_account(stripe, 12)
    charges = {n: stripe.create_charge(amount=CHARGE_AMOUNT, currency="eur")["id"] for n in "123"}
    paid = php_transfer(charges["1"], seller, "CO-1-A")  # recorded: TRANSFER_CREATED
    lost = php_transfer(charges["2"], seller, "CO-2-A")  # a worker died before recording it
    reversal = get_stripe().create_reversal(
        paid, 500, metadata={"miraklId": "R-1"}, idempotency_key="php-reversal-R-1"
    )["id"]
    refunded = get_stripe().create_refund(
        charges["1"], 500, metadata={"miraklRefundId": "R-1"}, idempotency_key="php-R-1"
    )["id"]
    lost_refund = get_stripe().create_refund(
        charges["2"], 1234, metadata={"miraklRefundId": "R-2"}, idempotency_key="php-R-2"
    )["id"]
    payout = get_stripe().create_payout(
        seller, amount=1234, currency="eur", metadata={"invoiceId": 501}, idempotency_key="php-501"
    )["id"]
    lost_payout = get_stripe().create_payout(
        seller, amount=4321, currency="eur", metadata={"invoiceId": 502}, idempotency_key="php-502"
    )["id"]

    link = f"{stripe.base_url}/_sandbox/express/{seller}/x"
    mirakl.add_shops(
        [
            make_shop(11, last_updated_date=AFTER_CHECKPOINTS,
                      shop_additional_fields=[{"code": "stripe-url", "value": link}]),
            make_shop(12, last_updated_date=AFTER_CHECKPOINTS),
        ]
    )  # fmt: skip
    mirakl.add_orders(
        [
            make_product_order(f"CO-{n}-A", shop_id=11, created_date=AFTER_CHECKPOINTS,
                               transaction_number=charges[n],
                               refunds=[make_refund_line("R-2", "12.34")] if n == "2" else ())
            for n in "123"
        ]
    )  # fmt: skip
    mirakl.add_invoices(
        [
            make_invoice(501, 11, AFTER_CHECKPOINTS, "12.34", "0", "0", "0"),
            make_invoice(502, 11, AFTER_CHECKPOINTS, "43.21", "0", "0", "0"),
        ]
    )

    (seller_row, _) = insert(
        reference,
        "account_mapping",
        [
            {"mirakl_shop_id": 11, "stripe_account_id": seller, "payout_enabled": True,
             "payin_enabled": True, **STAMPS},
            {"mirakl_shop_id": 12, "stripe_account_id": other, "payout_enabled": True,
             "payin_enabled": True, "onboarding_token": "ab" * 16, **STAMPS},
        ],
    )  # fmt: skip
    insert(
        reference,
        "payment_mapping",
        [
            {"mirakl_commercial_order_id": f"CO-{n}", "stripe_charge_id": charges[n],
             "status": "captured", "stripe_amount": CHARGE_AMOUNT, **STAMPS}
            for n in "123"
        ],
    )  # fmt: skip
    order = {
        "type": "TRANSFER_PRODUCT_ORDER",
        "account_mapping_id": seller_row,
        "amount": ORDER_AMOUNT,
        "currency": "eur",
        "mirakl_created_date": OLD,
        **STAMPS,
    }
    insert(
        reference,
        "stripe_transfer",
        [
            {**order, "mirakl_id": "CO-1-A", "status": "TRANSFER_CREATED", "transfer_id": paid,
             "transaction_id": charges["1"]},
            {**order, "mirakl_id": "CO-2-A", "status": "TRANSFER_PENDING",
             "transaction_id": charges["2"]},
            {**order, "mirakl_id": "CO-3-A", "status": "TRANSFER_ON_HOLD",
             "status_reason": "Order is not ready yet, status is WAITING_DEBIT_PAYMENT"},
            {"type": "TRANSFER_REFUND", "mirakl_id": "R-1", "status": "TRANSFER_CREATED",
             "transfer_id": reversal, "transaction_id": paid, "amount": 500, "currency": "eur",
             **STAMPS},
        ],
    )  # fmt: skip
    insert(
        reference,
        "stripe_refund",
        [
            {"mirakl_refund_id": "R-1", "mirakl_order_id": "CO-1-A", "amount": 500,
             "currency": "eur", "transaction_id": charges["1"], "stripe_refund_id": refunded,
             "status": "REFUND_CREATED", "mirakl_validation_time": OLD, **STAMPS},
            # Refunded on Stripe by a worker that died before recording it; PA02 not sent.
            {"mirakl_refund_id": "R-2", "mirakl_order_id": "CO-2-A",
             "mirakl_order_line_id": "CO-2-A-1", "mirakl_commercial_order_id": "CO-2",
             "amount": 1234, "currency": "eur", "transaction_id": charges["2"],
             "status": "REFUND_PENDING", **STAMPS},
        ],
    )  # fmt: skip
    insert(
        reference,
        "stripe_payout",
        [
            {"account_mapping_id": seller_row, "amount": 1234, "currency": "eur",
             "mirakl_invoice_id": 501, "payout_id": payout, "status": "PAYOUT_CREATED",
             "mirakl_created_date": OLD, **STAMPS},
            {"account_mapping_id": seller_row, "amount": 4321, "currency": "eur",
             "mirakl_invoice_id": 502, "status": "PAYOUT_PENDING", "mirakl_created_date": OLD,
             **STAMPS},
        ],
    )  # fmt: skip
    set_checkpoints(reference)
    return {"seller": seller, "other": other, "lost_refund": lost_refund, "lost": lost,
            "lost_payout": lost_payout}  # fmt: skip


def posts(stripe) -> Counter:
    return Counter(
        r["path"] for r in stripe.requests(method="POST") if not r["path"].startswith("/_")
    )


def test_switch_over_pays_nothing_twice_and_reads_from_the_checkpoints(
    switch_app, reference, stripe, mirakl
):
    made = build_php_connector(reference, stripe, mirakl)
    accounts_before = len(stripe.objects("accounts"))
    runner = switch_app.test_cli_runner()
    stripe.clear_requests()
    mirakl.clear_requests()

    imported = runner.invoke(args=["connector", "import-reference", "--from", reference])
    assert imported.exit_code == 0, imported.output
    for job in JOBS:
        result = runner.invoke(args=["connector", job])
        assert result.exit_code == 0, f"{job}: {result.output}"
    db.session.expire_all()

    # No second account; nothing made twice. What is new is what the PHP connector had not
    # done yet: the transfer of the order it held (not ready then, ready now) and the
    # reversal of the refund its worker made without recording.
    assert len(stripe.objects("accounts")) == accounts_before
    sent = posts(stripe)
    assert sent["/v1/accounts"] == 0
    assert sent["/v1/transfers"] == 1, sent
    assert sent["/v1/refunds"] == 0 and sent["/v1/payouts"] == 0, sent
    assert [p for p in sent if p.endswith("/reversals")] == [
        f"/v1/transfers/{made['lost']}/reversals"
    ], sent
    per_refund = Counter(r["metadata"].get("miraklId") for r in stripe.objects("reversals"))
    assert per_refund == {"R-1": 1, "R-2": 1}
    per_order = Counter(t["metadata"].get("miraklId") for t in stripe.objects("transfers"))
    assert per_order == {"CO-1-A": 1, "CO-2-A": 1, "CO-3-A": 1}
    assert len(stripe.objects("refunds")) == 2 and len(stripe.objects("payouts")) == 2
    transfers = {t.mirakl_id: t for t in db.session.execute(select(StripeTransfer)).scalars()}
    assert (transfers["CO-2-A"].status, transfers["CO-2-A"].transfer_id) == (
        "TRANSFER_CREATED",
        made["lost"],
    )
    assert transfers["CO-3-A"].status == "TRANSFER_CREATED"
    refund = db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == "R-2")
    ).scalar_one()
    assert (refund.status, refund.stripe_refund_id) == ("REFUND_CREATED", made["lost_refund"])
    payout = db.session.execute(
        select(StripePayout).where(StripePayout.mirakl_invoice_id == 502)
    ).scalar_one()
    assert (payout.status, payout.payout_id) == ("PAYOUT_CREATED", made["lost_payout"])

    # Mirakl was asked from the imported checkpoints on, never from the beginning.
    s20 = mirakl.requests("/api/shops", "GET")
    assert s20[0]["query"]["updated_since"] == [CHECKPOINTS["seller_onboarding_checkpoint"]]
    new_orders = [r for r in mirakl.requests("/api/orders", "GET") if "start_date" in r["query"]]
    assert [r["query"]["start_date"] for r in new_orders[:1]] == [
        [CHECKPOINTS["product_payment_split_checkpoint"]]
    ]
    unfiltered = [
        r
        for r in mirakl.requests("/api/orders", "GET") + mirakl.requests("/api/invoices", "GET")
        if not {"start_date", "order_ids", "commercial_ids", "shop"} & set(r["query"])
        and "page_token" not in r["query"]
        and "offset" not in r["query"]
    ]
    assert [(r["path"], r["query"]) for r in unfiltered] == []
    iv01 = mirakl.requests("/api/invoices", "GET")
    assert iv01 and all(
        r["query"].get("start_date") == [CHECKPOINTS["seller_settlement_checkpoint"]] for r in iv01
    ), iv01
