"""``connector process-transfer`` against the Mirakl and Stripe sandboxes, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy
from flask import Flask
from sqlalchemy import select, update

from sandbox.mirakl.demo import (
    LINE1_TAXES,
    LINE2_SHIPPING_TAXES,
    make_order_line,
    make_product_order,
    make_service_debit,
    make_service_order,
)
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Config,
    Notification,
    PaymentMapping,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_stripe
from webapp.services.ledger import transitions
from webapp.services.split.sync import retry_transfers

SPLIT_ON = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true", "ENABLE_SERVICE_PAYMENT_SPLIT": "true"}
TAX_ON = {"ENABLE_PAYMENT_TAX_SPLIT": "true", "STRIPE_TAX_ACCOUNT": "acct_placeholder"}


@pytest.fixture
def split_app(make_app) -> Iterator[Flask]:
    app = make_app(**SPLIT_ON)
    with app.app_context():
        yield app


def connect_shop(shop_id: int, *, ignored: bool = False, account_id: str | None = None) -> str:
    """A connected account in the Stripe sandbox and its mapping row."""
    if account_id is None:
        account = get_stripe().create_account(
            {"type": "express", "country": "FR"}, idempotency_key=f"test-account-{shop_id}"
        )
        account_id = account["id"]
    db.session.add(
        AccountMapping(mirakl_shop_id=shop_id, stripe_account_id=account_id, ignored=ignored)
    )
    db.session.commit()
    return account_id


def run_cli(app: Flask):
    result = app.test_cli_runner().invoke(args=["connector", "process-transfer"])
    db.session.rollback()
    db.session.expire_all()
    return result


def rows() -> dict[str, StripeTransfer]:
    return {
        r.mirakl_id: r
        for r in db.session.execute(select(StripeTransfer).order_by(StripeTransfer.id)).scalars()
    }


def by_mirakl_id(stripe) -> dict[str, dict]:
    return {t["metadata"]["miraklId"]: t for t in stripe.objects("transfers")}


# ---------------------------------------------------------------- worked amount table

PRODUCT_VARIANTS = {
    "P-1-A": ({}, 8073, 7205, 868),
    "P-2-A": ({"commission": 0}, 8472, 7604, 868),
    "P-3-A": (
        {"lines": [make_order_line("P-3-A-1", "12.34"), make_order_line("P-3-A-2", "56.78")]},
        6513,
        6513,
        0,
    ),
    "P-4-A": ({"tax_mode": "TAX_INCLUDED"}, 6513, 5645, 868),
    "P-5-A": (
        {
            "lines": [
                make_order_line("P-5-A-1", "12.34", taxes=LINE1_TAXES),
                make_order_line("P-5-A-2", "56.78", shipping_taxes=LINE2_SHIPPING_TAXES),
            ]
        },
        7293,
        6959,
        334,
    ),
}
SERVICE_VARIANTS = {
    "S-1-A": ({}, 1415, 1081, 334),
    "S-2-A": ({"commission": 0}, 1814, 1480, 334),
    "S-3-A": ({"tax_mode": "TAX_INCLUDED"}, 1081, 1081, 0),
    "S-4-A": ({"taxes": ()}, 1081, 1081, 0),
    "S-5-A": ({"taxes": (("1.56", "ECO_TAX"),)}, 1237, 1081, 156),
}


@pytest.mark.parametrize("tax_split", [False, True], ids=["no tax split", "tax split"])
def test_worked_amount_table_end_to_end(make_app, mirakl, stripe, tax_split):
    env = {**SPLIT_ON, **(TAX_ON if tax_split else {})}
    app = make_app(**env)
    with app.app_context():
        seller = connect_shop(1)
        tax_account = None
        if tax_split:
            tax_account = get_stripe().create_account(
                {"type": "express", "country": "FR"}, idempotency_key="test-tax-account"
            )["id"]
            # The operator's manual mapping of the tax account (docs/split.md).
            app.config["STRIPE_TAX_ACCOUNT"] = tax_account
            connect_shop(0, account_id=tax_account)
        charges = {}
        for order_id, (extra, *_) in PRODUCT_VARIANTS.items():
            charges[order_id] = stripe.create_charge(amount=8472, currency="eur")["id"]
            mirakl.add_orders(
                [make_product_order(order_id, transaction_number=charges[order_id], **extra)]
            )
        for order_id, (extra, *_) in SERVICE_VARIANTS.items():
            charges[order_id] = stripe.create_charge(amount=1814, currency="eur")["id"]
            mirakl.add_service_orders([make_service_order(order_id, **extra)])
            mirakl.add_service_debits(
                [make_service_debit(order_id, "18.14", transaction_number=charges[order_id])]
            )

        result = run_cli(app)

        assert result.exit_code == 0, result.output
        found, sent = rows(), by_mirakl_id(stripe)
        for order_id, (_, plain, seller_part, tax_part) in {
            **PRODUCT_VARIANTS,
            **SERVICE_VARIANTS,
        }.items():
            expected = seller_part if tax_split else plain
            row = found[order_id]
            assert (row.status, row.amount, row.currency) == ("TRANSFER_CREATED", expected, "eur")
            assert row.transaction_id == charges[order_id]
            assert row.transfer_group == order_id[:-2]
            transfer = sent[order_id]
            assert transfer["amount"] == expected
            assert transfer["destination"] == seller
            assert transfer["source_transaction"] == charges[order_id]
            assert transfer["transfer_group"] == order_id[:-2]
            assert transfer["metadata"]["miraklShopId"] == "1"
            assert transfer["id"] == row.transfer_id
            twin = found.get(f"{order_id}_TAX")
            if not tax_split:
                assert twin is None
            elif tax_part:
                assert (twin.status, twin.amount) == ("TRANSFER_CREATED", tax_part)
                tax_transfer = sent[f"{order_id}_TAX"]
                assert tax_transfer["destination"] == tax_account
                assert tax_transfer["amount"] == tax_part
                assert tax_transfer["source_transaction"] == charges[order_id]
                assert tax_transfer["metadata"]["miraklShopId"] == "0"
            else:
                assert (twin.status, twin.status_reason) == (
                    "TRANSFER_ABORTED",
                    "Amount must be positive, input was: 0",
                )
        expected_count = 10 + (7 if tax_split else 0)
        assert len(stripe.objects("transfers")) == expected_count
        types = {r.mirakl_id[0]: r.type for r in found.values()}
        assert types == {"P": "TRANSFER_PRODUCT_ORDER", "S": "TRANSFER_SERVICE_ORDER"}

        # Rerun: nothing new is paid.
        assert run_cli(app).exit_code == 0
        assert len(stripe.objects("transfers")) == expected_count


# ---------------------------------------------------------------- volume and paging


def test_hundreds_of_orders_over_several_pages(split_app, mirakl, stripe):
    connect_shop(1)
    orders = [
        make_product_order(
            f"V-{i:03d}-A", created_date=f"2024-02-01T10:{i // 60:02d}:{i % 60:02d}Z"
        )
        for i in range(250)
    ]
    mirakl.add_orders(orders)
    mirakl.clear_requests()

    result = run_cli(split_app)

    assert result.exit_code == 0, result.output
    assert "new product orders: 250 fetched, 250 pending" in result.output
    assert "transfers: 250 dispatched, 250 created" in result.output
    listing = mirakl.requests(path="/api/orders")
    assert len(listing) == 3
    assert all(r["query"].get("max") in ("100", ["100"]) for r in listing)
    statuses = {r.status for r in rows().values()}
    assert statuses == {"TRANSFER_CREATED"}
    assert len(stripe.objects("transfers")) == 250
    checkpoint = db.session.execute(
        select(Config.value).where(Config.key == "product_payment_split_checkpoint")
    ).scalar_one()
    assert checkpoint == "2024-02-01T10:04:09Z"

    mirakl.clear_requests()
    assert run_cli(split_app).exit_code == 0
    assert len(stripe.objects("transfers")) == 250
    again = mirakl.requests(path="/api/orders")
    assert len(again) == 1
    start = again[0]["query"]["start_date"]
    assert (start[0] if isinstance(start, list) else start) == "2024-02-01T10:04:09Z"


def test_a_run_that_dies_mid_way_keeps_its_checkpoint_and_skips_nothing(split_app, mirakl, stripe):
    connect_shop(1)
    mirakl.add_orders(
        [
            make_product_order(f"D-{i:03d}-A", created_date=f"2024-03-01T10:00:{i % 60:02d}Z")
            for i in range(150)
        ]
    )
    mirakl.set_faults(paths=["/api/orders"], sequence=[200, 500, 500, 500, 500, 500])

    failed = run_cli(split_app)

    assert failed.exit_code != 0
    assert len(rows()) == 100  # the first page was stored
    checkpoint = db.session.execute(
        select(Config.value).where(Config.key == "product_payment_split_checkpoint")
    ).scalar_one_or_none()
    assert checkpoint is None

    mirakl.clear_faults()
    assert run_cli(split_app).exit_code == 0
    assert len(rows()) == 150
    assert len(stripe.objects("transfers")) == 150


def test_an_order_stored_meanwhile_by_another_writer_does_not_block_its_chunk(
    split_app, mirakl, stripe, caplog
):
    """A chunk's rows go in with one batched INSERT; when it fails (here another writer
    stored one of the orders just before), the chunk is stored again order by order."""
    connect_shop(1)
    mirakl.add_orders(
        [make_product_order(f"W-{i}-A", created_date=f"2024-03-02T10:00:0{i}Z") for i in range(5)]
    )
    fired = []

    def other_writer(conn, cursor, statement, *args) -> None:
        if fired or not statement.startswith("INSERT INTO stripe_transfer"):
            return
        fired.append(statement)
        with db.engine.begin() as other:
            other.execute(
                StripeTransfer.__table__.insert().values(
                    type=TransferType.PRODUCT_ORDER.value,
                    mirakl_id="W-2-A",
                    status=TransferStatus.CREATED.value,
                    transfer_id="tr_elsewhere",
                    amount=1,
                    attempt=0,
                    creation_datetime=utcnow(),
                    modification_datetime=utcnow(),
                )
            )

    sqlalchemy.event.listen(db.engine, "before_cursor_execute", other_writer)
    try:
        result = run_cli(split_app)
    finally:
        sqlalchemy.event.remove(db.engine, "before_cursor_execute", other_writer)

    assert result.exit_code == 0, result.output
    assert fired
    assert "5 orders not stored together; storing them one by one" in caplog.text
    assert "new product orders: 5 fetched, 4 pending, 1 already known" in result.output
    stored = rows()
    assert stored["W-2-A"].transfer_id == "tr_elsewhere"
    assert sorted(by_mirakl_id(stripe)) == ["W-0-A", "W-1-A", "W-3-A", "W-4-A"]
    checkpoint = db.session.execute(
        select(Config.value).where(Config.key == "product_payment_split_checkpoint")
    ).scalar_one()
    assert checkpoint == "2024-03-02T10:00:04Z"


# ---------------------------------------------------------------- mixed states and bad input


def test_mixed_states_get_the_reference_statuses_and_reasons(split_app, mirakl, stripe):
    connect_shop(1)
    connect_shop(3, ignored=True)
    paid = stripe.create_charge(amount=8472, currency="eur")["id"]
    uncaptured = stripe.create_charge(amount=8472, currency="eur", captured=False)["id"]
    dollars = stripe.create_charge(amount=8472, currency="usd")["id"]
    intent = stripe.create_payment_intent(amount=8472, currency="eur", status="processing")["id"]
    mirakl.add_orders(
        [
            make_product_order("M-1-A", transaction_number=paid),
            make_product_order("M-2-A", state="WAITING_ACCEPTANCE"),
            make_product_order("M-3-A", state="CANCELED"),
            make_product_order("M-4-A", shop_id=2),
            make_product_order("M-5-A", shop_id=3),
            make_product_order("M-6-A", commission="100"),
            make_product_order("M-7-A", transaction_number=uncaptured),
            make_product_order("M-8-A", transaction_number=dollars),
            make_product_order("M-9-A", transaction_number="ch_does_not_exist"),
            make_product_order("M-10-A", transaction_number=intent),
            make_product_order("M-11-A", shop_id="not-a-number"),
            {**make_product_order("M-12-A"), "total_price": "abc"},
        ]
    )

    result = run_cli(split_app)

    assert result.exit_code == 0, result.output
    got = {k: (r.status.removeprefix("TRANSFER_"), r.status_reason) for k, r in rows().items()}
    assert got == {
        "M-1-A": ("CREATED", None),
        "M-2-A": ("ON_HOLD", "Order is not ready yet, status is WAITING_ACCEPTANCE"),
        "M-3-A": ("ABORTED", "Order cannot be processed, status is CANCELED"),
        "M-4-A": ("ON_HOLD", "Cannot find Stripe account for shop ID 2"),
        "M-5-A": ("IGNORED", "Shop 3 is ignored"),
        "M-6-A": ("ABORTED", "Amount must be positive, input was: -1528"),
        "M-7-A": ("ON_HOLD", f"Payment {uncaptured} is not ready yet, status is succeeded "
                  "(not captured)"),
        "M-8-A": ("ON_HOLD", f"Order currency EUR differs from the currency of payment {dollars}"
                  " (USD)"),
        "M-9-A": ("ABORTED", "No such charge: 'ch_does_not_exist'"),
        "M-10-A": ("ON_HOLD", f"Payment {intent} is not ready yet, status is processing"),
        "M-11-A": ("ON_HOLD", "Order M-11-A could not be read from Mirakl: shop_id is not a "
                   "number: 'not-a-number'"),
        "M-12-A": ("ON_HOLD", "Order M-12-A could not be read from Mirakl: total_price is not "
                   "a number: 'abc'"),
    }  # fmt: skip
    assert list(by_mirakl_id(stripe)) == ["M-1-A"]


def test_zero_decimal_currency_pays_1134_yen(split_app, mirakl, stripe):
    connect_shop(1)
    charge = stripe.create_charge(amount=1234, currency="jpy")["id"]
    mirakl.add_orders(
        [
            make_product_order(
                "J-1-A",
                currency="JPY",
                total_price=1234,
                commission=100,
                lines=[make_order_line("J-1-A-1", 1234)],
                transaction_number=charge,
            )
        ]
    )
    assert run_cli(split_app).exit_code == 0
    (transfer,) = stripe.objects("transfers")
    assert (transfer["amount"], transfer["currency"]) == (1134, "jpy")


def test_payment_mapping_gives_the_source_transaction(split_app, mirakl, stripe):
    connect_shop(1)
    charge = stripe.create_charge(amount=8472, currency="eur")["id"]
    db.session.add(PaymentMapping(mirakl_commercial_order_id="PM-1", stripe_charge_id=charge))
    db.session.commit()
    mirakl.add_orders([make_product_order("PM-1-A")])
    assert run_cli(split_app).exit_code == 0
    (transfer,) = stripe.objects("transfers")
    assert transfer["source_transaction"] == charge


# ---------------------------------------------------------------- backlog


def test_shop_onboarded_later_gets_its_held_orders_paid(split_app, mirakl, stripe):
    mirakl.add_orders(
        [make_product_order("L-1-A", shop_id=2), make_product_order("L-2-A", shop_id=2)]
    )
    assert run_cli(split_app).exit_code == 0
    assert {r.status_reason for r in rows().values()} == {
        "Cannot find Stripe account for shop ID 2"
    }
    assert stripe.objects("transfers") == []

    account = connect_shop(2)
    mirakl.clear_requests()
    result = run_cli(split_app)

    assert result.exit_code == 0, result.output
    assert "product backlog: 2 retriable, 2 pending" in result.output
    assert {r.status for r in rows().values()} == {"TRANSFER_CREATED"}
    assert sorted(t["metadata"]["miraklId"] for t in stripe.objects("transfers")) == [
        "L-1-A",
        "L-2-A",
    ]
    assert {t["destination"] for t in stripe.objects("transfers")} == {account}
    by_id = [r for r in mirakl.requests(path="/api/orders") if "order_ids" in r["query"]]
    assert len(by_id) == 1


def test_backlog_survives_orders_mirakl_no_longer_returns(make_app, mirakl, stripe):
    app = make_app(**SPLIT_ON, **TAX_ON)
    with app.app_context():
        connect_shop(1)
        for mirakl_id in ("GONE-1-A", "GONE-1-A_TAX", "HERE-1-A"):
            transitions.create(
                StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id=mirakl_id),
                TransferStatus.ON_HOLD,
                "Order is not ready yet, status is WAITING_ACCEPTANCE",
                actor="test",
            )
        db.session.commit()
        mirakl.add_orders([make_product_order("HERE-1-A")])

        result = run_cli(app)

        assert result.exit_code == 0, result.output
        got = rows()
        assert got["GONE-1-A"].status_reason == "Order GONE-1-A was not returned by Mirakl"
        assert got["GONE-1-A_TAX"].status_reason == "Order GONE-1-A was not returned by Mirakl"
        assert got["HERE-1-A"].status == "TRANSFER_CREATED"
        # The twin of HERE-1-A is created next to its open seller row (tax account unmapped).
        assert (
            got["HERE-1-A_TAX"].status_reason
            == "Cannot find Stripe account for ID acct_placeholder"
        )
        (query,) = [
            r["query"] for r in mirakl.requests(path="/api/orders") if "order_ids" in r["query"]
        ]
        ids = query["order_ids"]
        assert sorted((ids if isinstance(ids, str) else ",".join(ids)).split(",")) == [
            "GONE-1-A",
            "HERE-1-A",
        ]


def test_backlog_fetches_orders_by_id_in_batches_of_100(split_app, mirakl, stripe):
    for i in range(150):
        transitions.create(
            StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id=f"B-{i:03d}-A"),
            TransferStatus.ON_HOLD,
            "Cannot find Stripe account for shop ID 1",
            actor="test",
        )
    db.session.commit()
    assert run_cli(split_app).exit_code == 0
    by_id = [r for r in mirakl.requests(path="/api/orders") if "order_ids" in r["query"]]
    assert len(by_id) == 2


def test_stripe_refusal_fails_notifies_then_pays_once_fixed(split_app, mirakl, stripe):
    connect_shop(1, account_id="acct_closed")  # a mapping to an account Stripe doesn't know
    charge = stripe.create_charge(amount=8472, currency="eur")["id"]
    mirakl.add_orders([make_product_order("F-1-A", transaction_number=charge)])

    assert run_cli(split_app).exit_code == 0

    row = rows()["F-1-A"]
    assert row.status == "TRANSFER_FAILED"
    assert row.status_reason == "No such destination: 'acct_closed'"
    assert row.attempt == 1
    (note,) = db.session.execute(select(Notification)).scalars()
    assert note.type == "transfer.failed"
    payload = json.loads(note.payload)
    assert payload["miraklId"] == "F-1-A"
    assert payload["failedReason"] == "No such destination: 'acct_closed'"
    assert payload["status"] == "TRANSFER_FAILED"
    assert (payload["amount"], payload["currency"], payload["miraklShopId"]) == (8073, "eur", 1)
    assert stripe.objects("transfers") == []

    # The operator fixes the mapping: the next run pays, once.
    account = get_stripe().create_account({"type": "express"}, idempotency_key="test-fixed")["id"]
    db.session.execute(
        update(AccountMapping)
        .where(AccountMapping.mirakl_shop_id == 1)
        .values(stripe_account_id=account)
    )
    db.session.commit()
    assert run_cli(split_app).exit_code == 0
    assert run_cli(split_app).exit_code == 0
    (transfer,) = stripe.objects("transfers")
    assert (transfer["destination"], transfer["amount"]) == (account, 8073)
    assert rows()["F-1-A"].status == "TRANSFER_CREATED"
    keys = [r.get("idempotency_key") for r in stripe.requests("/v1/transfers", "POST")]
    assert keys[-1] == "mirakl-connector:TRANSFER_PRODUCT_ORDER:F-1-A:1"


def test_lost_work_is_found_in_stripe_and_not_paid_twice(make_app, mirakl, stripe):
    app = make_app(**SPLIT_ON, PENDING_RECHECK_AFTER="0")
    with app.app_context():
        account = connect_shop(1)
        mapping = db.session.execute(select(AccountMapping)).scalar_one()
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        row = StripeTransfer(
            type=TransferType.PRODUCT_ORDER.value,
            mirakl_id="W-1-A",
            amount=8073,
            currency="eur",
            transaction_id=charge,
            account_mapping_id=mapping.id,
            mirakl_shop_id=1,
            transfer_group="W-1",
        )
        transitions.create(row, TransferStatus.PENDING, actor="test")
        row.attempted_at = utcnow() - timedelta(minutes=5)  # a worker claimed it, then died
        db.session.commit()
        # ... after Stripe had created the transfer.
        earlier = get_stripe().create_transfer(
            amount=8073,
            currency="eur",
            destination=account,
            metadata={"miraklId": "W-1-A", "miraklShopId": 1, "connectorType": row.type},
            idempotency_key="an-earlier-attempt",
            source_transaction=charge,
            transfer_group="W-1",
        )

        assert run_cli(app).exit_code == 0

        found = rows()["W-1-A"]
        assert (found.status, found.transfer_id) == ("TRANSFER_CREATED", earlier["id"])
        assert len(stripe.objects("transfers")) == 1


def test_retry_transfers_returns_the_rows_now_pending(split_app, mirakl, stripe):
    mirakl.add_orders([make_product_order("R-1-A"), make_product_order("R-2-A", shop_id=9)])
    assert run_cli(split_app).exit_code == 0
    connect_shop(1)
    created = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id="R-3-A")
    transitions.create(created, TransferStatus.CREATED, actor="test")
    db.session.commit()
    ids = [r.id for r in rows().values()]

    assert retry_transfers(ids, actor="console:ops@example.com") == [rows()["R-1-A"].id]
    assert rows()["R-2-A"].status_reason == "Cannot find Stripe account for shop ID 9"
    assert rows()["R-3-A"].status == "TRANSFER_CREATED"


# ---------------------------------------------------------------- run-level failures


def test_mirakl_down_fails_the_run_with_one_line(split_app, mirakl):
    mirakl.set_faults(error_rate=1.0)
    result = run_cli(split_app)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: process-transfer failed: OR11 GET /api/orders: HTTP 500")


def test_disabled_domains_do_nothing(make_app, mirakl, stripe):
    app = make_app()
    with app.app_context():
        mirakl.add_orders([make_product_order("X-1-A")])
        result = run_cli(app)
        assert result.exit_code == 0
        assert "product orders: disabled (ENABLE_PRODUCT_PAYMENT_SPLIT is false)" in result.output
        assert mirakl.requests(path="/api/orders") == []


def test_service_order_is_paid_once_its_debit_is_ok(split_app, mirakl, stripe):
    account = connect_shop(1)
    charge = stripe.create_charge(amount=1814, currency="eur")["id"]
    mirakl.add_service_orders([make_service_order("SV-1-A")])
    mirakl.add_service_debits([make_service_debit("SV-1-A", "18.14", state="WAITING")])
    assert run_cli(split_app).exit_code == 0
    row = rows()["SV-1-A"]
    assert (row.status, row.status_reason) == (
        "TRANSFER_ON_HOLD",
        "Order is not ready yet, status is ORDER_ACCEPTED",
    )

    mirakl.add_service_debits([make_service_debit("SV-1-A", "18.14", transaction_number=charge)])
    mirakl.clear_requests()
    result = run_cli(split_app)

    assert result.exit_code == 0, result.output
    assert "service backlog: 1 retriable, 1 pending" in result.output
    (transfer,) = stripe.objects("transfers")
    assert (transfer["amount"], transfer["destination"]) == (1415, account)
    assert transfer["source_transaction"] == charge
    assert transfer["transfer_group"] == "SV-1"
    by_id = [r for r in mirakl.requests(path="/api/mms/orders") if "order_id" in r["query"]]
    assert len(by_id) == 1
    assert len(mirakl.requests(path="/api/mms/debits")) == 1  # backlog only: no new orders
