"""API faults: Mirakl and Stripe sandboxes failing about one call in five.

Mirakl answers 429 (``Retry-After: 0``), 500 or drops the connection; Stripe answers 429 or
500, drops the connection, or executes the request and then loses the answer (an unknown
outcome). Under these faults every run of every workflow must complete, or fail cleanly
(exit code 1, one line) when Mirakl stays unavailable, and every item must converge within
``MAX_RUNS`` runs (``PENDING_RECHECK_AFTER=0``: unknown outcomes are looked up on the next
run). The Stripe sandbox then shows each payable item paid exactly once.

Each workflow runs with ``STRIPE_MAX_NETWORK_RETRIES`` 0 (the test default: our own
idempotency key and look-ups only) and 2 (stripe-python's own retries, same key).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from sandbox.mirakl.demo import make_invoice, make_product_order, make_refund_line
from sandbox.stripe.events import make_event, sign_payload
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    JobRun,
    PaymentMapping,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_stripe
from webapp.services.ledger import transitions
from webapp.services.ledger.keys import idempotency_key

pytestmark = pytest.mark.chaos

MAX_RUNS = 8  # runs within which every item must have converged
# Explore more interleavings with e.g. CHAOS_SEED=7 CHAOS_SCALE=5 (seeds shift, sizes grow).
SEED = int(os.environ.get("CHAOS_SEED", "0"))
SCALE = int(os.environ.get("CHAOS_SCALE", "1"))
MIRAKL_FAULTS = {"rate_limit_rate": 0.07, "error_rate": 0.07, "drop_rate": 0.06, "retry_after": 0}
STRIPE_FAULTS = {
    "error_rate": 0.05,
    "after_rate": 0.05,
    "rate_limit_rate": 0.05,
    "drop_rate": 0.05,
    "after_action": "random",
}
RETRIES = pytest.mark.parametrize("stripe_retries", ["0", "2"], ids=["own retries", "sdk retries"])
PA02, PA01 = "/api/payment/refund", "/api/payment/debit"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def crashes(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """Money jobs that died of an exception instead of recording an outcome."""
    caplog.set_level(logging.ERROR, logger="webapp")

    def found() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("webapp") and r.exc_info is not None
        ]

    yield found


def faulty_app(make_app, stripe_retries: str, **env: str) -> Flask:
    """An app that looks unknown outcomes up on the next run."""
    return make_app(PENDING_RECHECK_AFTER="0", STRIPE_MAX_NETWORK_RETRIES=stripe_retries, **env)


def inject_faults(mirakl, stripe, seed: int, retry_after: float = 0) -> None:
    """About one call in five fails, on both sandboxes (seeded, shifted by ``CHAOS_SEED``)."""
    seed += 1000 * SEED
    mirakl.set_faults(seed=seed, **{**MIRAKL_FAULTS, "retry_after": retry_after})
    stripe.set_faults(seed=seed, **STRIPE_FAULTS)


def converge(app: Flask, command: str, is_done: Callable[[], bool]) -> list[int]:
    """Run ``command`` until ``is_done()``; return each run's exit code.

    Every run completes (exit 0) or fails cleanly: exit 1 and one line naming the command.
    """
    codes = []
    while len(codes) < MAX_RUNS:
        result = app.test_cli_runner().invoke(args=["connector", command])
        db.session.rollback()
        db.session.expire_all()
        codes.append(result.exit_code)
        assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
        if result.exit_code == 1:
            [line] = result.stderr.strip().splitlines()
            assert line.startswith(f"error: {command} failed: "), line
            assert "unexpected error" not in line, line
        if is_done():
            return codes
    runs = db.session.execute(select(JobRun.outcome, JobRun.summary, JobRun.error)).all()
    pytest.fail(f"{command}: not converged after {MAX_RUNS} runs: {runs}")


def seller(stripe, shop_id: int = 1) -> AccountMapping:
    acct = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key=f"faults-account-{shop_id}"
    )["id"]
    stripe.set_account(
        acct, charges_enabled=True, payouts_enabled=True, capabilities={"transfers": "active"}
    )
    stripe.set_balance(acct, "eur", 100000)
    stripe.set_balance("platform", "eur", 10_000_000)  # credits are paid from it
    mapping = AccountMapping(
        mirakl_shop_id=shop_id, stripe_account_id=acct, payout_enabled=True, payin_enabled=True
    )
    db.session.add(mapping)
    db.session.commit()
    return mapping


def statuses(model: type) -> Counter:
    return Counter(db.session.execute(select(model.status)).scalars())


def metadata_counts(stripe, kind: str, key: str) -> Counter:
    return Counter((o.get("metadata") or {}).get(key) for o in stripe.objects(kind))


# ---------------------------------------------------------------- payment split


@RETRIES
def test_payment_split_converges_and_pays_each_order_once(
    make_app, mirakl, stripe, crashes, stripe_retries
):
    orders = 12 * SCALE
    app = faulty_app(make_app, stripe_retries, ENABLE_PRODUCT_PAYMENT_SPLIT="1")
    with app.app_context():
        acct = seller(stripe).stripe_account_id
        for n in range(orders):
            charge = stripe.create_charge(amount=8472, currency="eur")["id"]
            mirakl.add_orders([make_product_order(f"F-{n}-A", transaction_number=charge)])
        inject_faults(mirakl, stripe, seed=11)

        converge(
            app,
            "process-transfer",
            lambda: statuses(StripeTransfer) == {"TRANSFER_CREATED": orders},
        )

        stripe.clear_faults()
        assert metadata_counts(stripe, "transfers", "miraklId") == {
            f"F-{n}-A": 1 for n in range(orders)
        }
        # Every POST, stripe-python's own retries included, carried our derived key.
        keys = Counter(r["idempotency_key"] for r in stripe.requests("/v1/transfers", "POST"))
        rows = db.session.execute(select(StripeTransfer)).scalars().all()
        assert set(keys) == {idempotency_key(r.type, r.mirakl_id, 0) for r in rows}
        made = {t["id"]: t for t in stripe.objects("transfers")}
        for row in db.session.execute(select(StripeTransfer)).scalars():
            transfer = made[row.transfer_id]
            assert (transfer["metadata"]["miraklId"], transfer["amount"]) == (row.mirakl_id, 8073)
            assert transfer["destination"] == acct
        assert crashes() == []


# ---------------------------------------------------------------- refunds


def split_transfer(mapping: AccountMapping, charge_id: str, order_id: str) -> StripeTransfer:
    """The order's transfer, as the payment split leaves it (a real sandbox transfer)."""
    transfer_id = get_stripe().create_transfer(
        amount=8073,
        currency="eur",
        destination=mapping.stripe_account_id,
        metadata={"miraklId": order_id, "miraklShopId": mapping.mirakl_shop_id},
        idempotency_key=f"faults-split-{order_id}",
        source_transaction=charge_id,
    )["id"]
    row = StripeTransfer(
        mirakl_id=order_id,
        type=TransferType.PRODUCT_ORDER.value,
        account_mapping_id=mapping.id,
        transfer_id=transfer_id,
        transaction_id=charge_id,
        amount=8073,
        currency="eur",
        mirakl_shop_id=mapping.mirakl_shop_id,
    )
    transitions.create(row, TransferStatus.CREATED, actor="test")
    db.session.commit()
    return row


def reversals_done(count: int) -> bool:
    rows = db.session.execute(
        select(StripeTransfer.status).where(StripeTransfer.type == TransferType.REFUND.value)
    ).scalars()
    return statuses(StripeRefund) == {"REFUND_CREATED": count} and Counter(rows) == {
        "TRANSFER_CREATED": count
    }


@RETRIES
def test_refunds_converge_refund_once_and_tell_mirakl_once(
    make_app, mirakl, stripe, crashes, stripe_retries
):
    count = 6 * SCALE
    app = faulty_app(make_app, stripe_retries, ENABLE_PRODUCT_PAYMENT_REFUND="true")
    with app.app_context():
        mapping = seller(stripe)
        for n in range(count):
            charge = stripe.create_charge(amount=8472, currency="eur")["id"]
            split_transfer(mapping, charge, f"R-{n}-A")
            order = make_product_order(f"R-{n}-A", refunds=[make_refund_line(str(5000 + n))])
            mirakl.add_orders([order])
        inject_faults(mirakl, stripe, seed=22)

        converge(app, "process-refund", lambda: reversals_done(count))

        stripe.clear_faults()
        refund_ids = [str(5000 + n) for n in range(count)]
        assert metadata_counts(stripe, "refunds", "miraklRefundId") == dict.fromkeys(refund_ids, 1)
        assert {r["amount"] for r in stripe.objects("refunds")} == {1234}
        assert metadata_counts(stripe, "reversals", "miraklId") == dict.fromkeys(refund_ids, 1)
        assert {r["amount"] for r in stripe.objects("reversals")} == {1111}
        told = Counter(
            entry["refund_id"]
            for request in mirakl.requests(path=PA02, method="PUT")
            if request["status"] == 204 or request["status"] == 200
            for entry in request["body"]["refunds"]
        )
        assert told == dict.fromkeys(refund_ids, 1)
        rows = db.session.execute(select(StripeRefund)).scalars().all()
        made = {r["id"] for r in stripe.objects("refunds")}
        assert {r.stripe_refund_id for r in rows} == made
        assert all(r.mirakl_validation_time is not None for r in rows)
        assert crashes() == []


# ---------------------------------------------------------------- payouts


@RETRIES
def test_payouts_converge_and_pay_each_invoice_once(
    make_app, mirakl, stripe, crashes, stripe_retries
):
    invoices = 4 * SCALE
    app = faulty_app(make_app, stripe_retries)
    with app.app_context():
        for shop in (1, 2):
            seller(stripe, shop)
        mirakl.add_invoices(
            [
                make_invoice(n, shop_id=1 + n % 2, date_created=f"2024-01-01T10:{n:02d}:00Z")
                for n in range(1, invoices + 1)
            ]
        )
        # Mirakl asks to wait a second on its 429s.
        inject_faults(mirakl, stripe, seed=33, retry_after=1)

        converge(
            app,
            "process-payout",
            lambda: (
                statuses(StripePayout) == {"PAYOUT_CREATED": invoices}
                and statuses(StripeTransfer) == {"TRANSFER_CREATED": 3 * invoices}
            ),
        )

        stripe.clear_faults()
        sent = Counter(
            (t["metadata"]["connectorType"], t["metadata"]["miraklId"], t["amount"])
            for t in stripe.objects("transfers")
        )
        expected = Counter()
        for n in range(1, invoices + 1):
            expected[("TRANSFER_SUBSCRIPTION", str(n), 999)] = 1
            expected[("TRANSFER_EXTRA_CREDITS", str(n), 5678)] = 1
            expected[("TRANSFER_EXTRA_INVOICES", str(n), 9876)] = 1
        assert sent == expected
        paid = Counter((p["metadata"]["invoiceId"], p["amount"]) for p in stripe.objects("payouts"))
        assert paid == {(str(n), 1234): 1 for n in range(1, invoices + 1)}
        assert crashes() == []


# ---------------------------------------------------------------- payment validation


def announce(app: Flask, charge: dict) -> None:
    payload = json.dumps(make_event("charge.succeeded", charge)).encode()
    answer = app.test_client().post(
        "/api/public/webhook/operator",
        data=payload,
        headers={"Stripe-Signature": sign_payload(payload, "whsec_operator")},
    )
    assert answer.status_code == 200, answer.text


def captured(count: int) -> bool:
    rows = db.session.execute(select(PaymentMapping.status)).scalars()
    return Counter(rows) == {"captured": count}


@RETRIES
def test_payment_validation_converges_and_captures_once(
    make_app, mirakl, stripe, crashes, stripe_retries
):
    count = 6 * SCALE
    app = faulty_app(make_app, stripe_retries)
    with app.app_context():
        charges = {}
        for n in range(count):
            charge = stripe.create_charge(
                amount=8472,
                currency="eur",
                captured=False,
                metadata={"mirakl_commercial_order_id": f"V-{n}"},
            )
            announce(app, charge)
            charges[charge["id"]] = f"V-{n}-A"
            mirakl.add_orders(
                [make_product_order(f"V-{n}-A", f"V-{n}", state="WAITING_DEBIT_PAYMENT")]
            )
        inject_faults(mirakl, stripe, seed=44)

        converge(app, "validate-pending-debit", lambda: captured(count))

        stripe.clear_faults()
        stored = {c["id"]: c for c in stripe.objects("charges")}
        assert {(stored[c]["captured"], stored[c]["amount_captured"]) for c in charges} == {
            (True, 8472)
        }
        debited = Counter(
            (entry["order_id"], entry["transaction_number"], entry["payment_status"])
            for request in mirakl.requests(path=PA01, method="PUT")
            if request["status"] in (200, 204)
            for entry in request["body"]["orders"]
        )
        assert debited == {(order, charge, "OK"): 1 for charge, order in charges.items()}
        states = {o["order_id"]: o["order_state"] for o in mirakl.state()["orders"]}
        assert set(states.values()) == {"SHIPPING"}
        assert crashes() == []


# ---------------------------------------------------------------- Mirakl down, Stripe slow


def test_mirakl_down_fails_the_run_in_one_line_and_the_next_run_recovers(
    make_app, mirakl, stripe, crashes
):
    app = make_app(ENABLE_PRODUCT_PAYMENT_SPLIT="true", MIRAKL_TIMEOUT="0.3")
    with app.app_context():
        seller(stripe)
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        mirakl.add_orders([make_product_order("D-1-A", transaction_number=charge)])
        for faults in (
            {"error_rate": 1.0},
            {"rate_limit_rate": 1.0, "retry_after": 0},
            {"drop_rate": 1.0},
            {"latency_ms": 600},
        ):
            mirakl.set_faults(**faults)
            result = app.test_cli_runner().invoke(args=["connector", "process-transfer"])
            assert result.exit_code == 1, (faults, result.output)
            [line] = result.stderr.strip().splitlines()
            assert line.startswith("error: process-transfer failed: OR11 GET /api/orders: "), line
            assert stripe.objects("transfers") == []

        mirakl.clear_faults()
        result = app.test_cli_runner().invoke(args=["connector", "process-transfer"])
        assert result.exit_code == 0, result.output
        db.session.expire_all()
        row = db.session.execute(select(StripeTransfer)).scalar_one()
        assert row.status == "TRANSFER_CREATED"
        assert [t["metadata"]["miraklId"] for t in stripe.objects("transfers")] == ["D-1-A"]
        outcomes = db.session.execute(select(JobRun.outcome).order_by(JobRun.id)).scalars()
        assert list(outcomes) == ["failed"] * 4 + ["succeeded"]
        assert crashes() == []


@pytest.mark.parametrize("stripe_retries", ["0", "2"], ids=["own retries", "sdk retries"])
def test_stripe_timeouts_then_recovery_make_each_transfer_once(
    make_app, mirakl, stripe, crashes, stripe_retries
):
    """Stripe answers after we gave up (the transfers are made anyway); the next run finds
    them instead of sending them again."""
    orders = 3
    app = make_app(
        ENABLE_PRODUCT_PAYMENT_SPLIT="true",
        STRIPE_TIMEOUT="0.5",
        STRIPE_MAX_NETWORK_RETRIES=stripe_retries,
        PENDING_RECHECK_AFTER="0",
    )
    with app.app_context():
        seller(stripe)
        for n in range(orders):
            charge = stripe.create_charge(amount=8472, currency="eur")["id"]
            mirakl.add_orders([make_product_order(f"T-{n}-A", transaction_number=charge)])
        stripe.set_faults(latency_ms=900, paths=["/v1/transfers"], methods=["POST"])

        result = app.test_cli_runner().invoke(args=["connector", "process-transfer"])

        assert result.exit_code == 0, result.output
        db.session.expire_all()
        rows = db.session.execute(select(StripeTransfer)).scalars().all()
        unknown = [r for r in rows if r.status == "TRANSFER_PENDING"]
        assert all(r.status_reason.startswith("Outcome unknown, will be checked") for r in unknown)
        if stripe_retries == "0":  # stripe-python's own retries may have got the answer
            assert len(unknown) == orders
        stripe.clear_faults()
        time.sleep(0.5)  # the sandbox finishes the requests we gave up on
        result = app.test_cli_runner().invoke(args=["connector", "process-transfer"])
        assert result.exit_code == 0, result.output
        db.session.expire_all()
        assert statuses(StripeTransfer) == {"TRANSFER_CREATED": orders}
        assert metadata_counts(stripe, "transfers", "miraklId") == {
            f"T-{n}-A": 1 for n in range(orders)
        }
        assert crashes() == []


def test_refund_validation_applied_but_answer_lost_is_not_refunded_twice(
    make_app, mirakl, stripe, crashes
):
    """Mirakl applied PA02 but the connection dropped before its answer: the next run must
    see the refund as validated (Mirakl says it is no longer waiting), not refund again or
    fail it. The sandbox drops before applying, so the test then applies it in Mirakl."""
    app = make_app(ENABLE_PRODUCT_PAYMENT_REFUND="true", PENDING_RECHECK_AFTER="0")
    with app.app_context():
        mapping = seller(stripe)
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        split_transfer(mapping, charge, "M-1-A")
        mirakl.add_orders([make_product_order("M-1-A", refunds=[make_refund_line("7000")])])
        mirakl.set_faults(paths=[PA02], sequence=[200, "drop"])  # PA12 answers, PA02 drops

        first = app.test_cli_runner().invoke(args=["connector", "process-refund"])

        assert first.exit_code == 0, first.output
        db.session.expire_all()
        row = db.session.execute(select(StripeRefund)).scalar_one()
        # The operator hears of it (refund.failed); the next run validates it again.
        assert (row.status, row.status_reason) == (
            "REFUND_FAILED",
            "Mirakl validation failed: PA02 PUT /api/payment/refund: ConnectionError after 1 tries",
        )
        [made] = stripe.objects("refunds")
        assert row.stripe_refund_id == made["id"]
        applied = make_product_order("M-1-A", refunds=[make_refund_line("7000", state="REFUNDED")])
        mirakl.patch_order("M-1-A", order_lines=applied["order_lines"])

        second = app.test_cli_runner().invoke(args=["connector", "process-refund"])

        assert second.exit_code == 0, second.output
        db.session.expire_all()
        row = db.session.execute(select(StripeRefund)).scalar_one()
        assert (row.status, row.status_reason, row.stripe_refund_id) == (
            "REFUND_CREATED",
            None,
            made["id"],
        )
        assert [r["id"] for r in stripe.objects("refunds")] == [made["id"]]
        assert [r["metadata"]["miraklId"] for r in stripe.objects("reversals")] == ["7000"]
        assert crashes() == []
