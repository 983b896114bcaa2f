"""Crash tests: money moves exactly once when workers and job runs die with SIGKILL.

Each trial (seeded; ``CHAOS_TRIALS`` trials per workflow, 6 by default) runs the workflow's
job as the scheduler does (money operations go to the RQ money queue), drains the queue with
real ``connector worker money --burst`` processes killed at a seeded point, sometimes with
Stripe answers lost after the request was executed; then runs the job again with
``PENDING_RECHECK_AFTER=0`` and a worker that is not killed until nothing is PENDING.
The Stripe and Mirakl sandboxes then show each payable item paid exactly once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from flask import Flask
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.demo import make_invoice, make_product_order, make_refund_line
from sandbox.stripe.control import StripeControl
from tests.chaos import harness
from webapp.extensions import db
from webapp.jobs.runner import run_job
from webapp.jobs.table import get_job
from webapp.models import (
    AccountMapping,
    JobRun,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.clients import get_stripe
from webapp.services.dispatch.money_jobs import job_id
from webapp.services.ledger import transitions
from webapp.services.queueing.queues import MONEY_QUEUE, get_queue

pytestmark = pytest.mark.chaos

ORDERS = 4  # product orders per split trial
REFUNDS = 3  # refunds per refund trial (one order each)
INVOICES = 2  # invoices per payout trial (each: 2 fees, 1 credit, 1 payout)
ORDER_AMOUNT = 8073  # seller's share of make_product_order's default order
REFUND_AMOUNT = 1234  # make_refund_line's default amount
SPLIT_FLAGS = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true"}
REFUND_FLAGS = {"ENABLE_PRODUCT_PAYMENT_REFUND": "true"}
PAYOUT_FLAGS: dict[str, str] = {}
PA02 = "/api/payment/refund"
ABANDONED = "abandoned: the run stopped without finishing (process killed?); its lease expired"


@dataclass(frozen=True)
class Trial:
    """One seeded trial's choices: where workers die, and whether Stripe answers get lost."""

    seed: int
    kills: tuple[harness.Kill, ...]
    lost_answers: bool

    @classmethod
    def draw(cls, seed: int, most_posts: int) -> Trial:
        rng = random.Random(seed)
        kills = [harness.Kill.draw(rng, most_posts)]
        if rng.random() < 0.25:  # and sometimes the next worker dies too
            kills.append(harness.Kill.draw(rng, max(1, most_posts - kills[0].posts)))
        return cls(seed, tuple(kills), lost_answers=rng.random() < 0.5)


def run_trial(
    make_app: Callable,
    base_env: dict[str, str],
    stripe: StripeControl,
    flags: dict[str, str],
    job: str,
    seed_data: Callable[[], Any],
    is_settled: Callable[[], bool],
    *,
    seed: int,
    most_posts: int,
    kill_on: Callable[[], int] | None = None,
) -> tuple[Any, Flask, harness.Recovery]:
    """Seed, run ``job`` queued while real workers are killed, then recover.

    The first worker (not in burst mode, so it starts while the data is seeded) is killed
    after ``1..most_posts`` money POSTs (or calls counted by ``kill_on``); a second one, in
    burst mode, sometimes too.
    """
    trial = Trial.draw(seed, most_posts)
    app = make_app(**flags)
    env = {**base_env, **flags}
    worker = harness.start_connector(env, "worker", "money")
    try:
        with app.app_context():
            data = seed_data()
        seen = kill_on or (lambda: harness.stripe_posts(stripe))
        start = seen()
        if trial.lost_answers:
            stripe.set_faults(
                after_rate=0.3, seed=seed, paths=list(harness.MONEY_PATHS), methods=["POST"]
            )
        with app.app_context():
            harness.run_queued(job)
        idle = partial(harness.is_money_queue_idle, base_env["REDIS_URL"])
        harness.kill_at(worker, seen, trial.kills[0], start, is_idle=idle)
        for kill in trial.kills[1:]:
            # The first worker may have left nothing to do: a burst worker that finds the
            # queue empty logs "done, quitting", yet its process was once seen alive a
            # minute later, so it is judged idle and stopped like the first one.
            burst = harness.start_connector(env, "worker", "money", "--burst")
            harness.kill_at(burst, seen, kill, is_idle=idle)
    finally:
        harness.stop(worker)
    stripe.clear_faults()
    recovery_app = make_app(**flags, PENDING_RECHECK_AFTER="0")
    return data, recovery_app, harness.recover(recovery_app, job, is_settled)


def count_rows(model: type, status: str) -> int:
    db.session.expire_all()
    return db.session.execute(
        select(func.count()).select_from(model).where(model.status == status)
    ).scalar_one()


def add_seller(stripe: StripeControl, shop_id: int = 1) -> AccountMapping:
    """A connected account with 1000.00 EUR available, mapped to ``shop_id``."""
    acct = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key=f"chaos-account-{shop_id}"
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


def live(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("status") not in ("failed", "canceled")]


# ---------------------------------------------------------------- payment split


def seed_orders(mirakl: MiraklControl, stripe: StripeControl) -> dict[str, str]:
    """ORDERS paid product orders of shop 1; returns order id → charge id."""
    add_seller(stripe)
    charges = {}
    for i in range(ORDERS):
        order_id = f"C-{i}-A"
        charges[order_id] = stripe.create_charge(amount=8472, currency="eur")["id"]
        mirakl.add_orders([make_product_order(order_id, transaction_number=charges[order_id])])
    return charges


def split_settled() -> bool:
    return count_rows(StripeTransfer, TransferStatus.PENDING.value) == 0


def assert_split_exactly_once(stripe: StripeControl, charges: dict[str, str]) -> None:
    transfers = live(stripe.objects("transfers"))
    assert harness.count_by(transfers, "miraklId") == Counter(dict.fromkeys(charges, 1))
    by_order = {t["metadata"]["miraklId"]: t for t in transfers}
    rows = db.session.execute(select(StripeTransfer)).scalars().all()
    assert sorted(r.mirakl_id for r in rows) == sorted(charges)
    for row in rows:
        sent = by_order[row.mirakl_id]
        assert (row.status, row.transfer_id, row.amount) == (
            TransferStatus.CREATED.value,
            sent["id"],
            ORDER_AMOUNT,
        )
        assert (sent["amount"], sent["source_transaction"]) == (
            ORDER_AMOUNT,
            charges[row.mirakl_id],
        )


@pytest.mark.parametrize("seed", harness.seeds())
def test_split_pays_each_order_once_when_workers_die(make_app, base_env, mirakl, stripe, seed):
    charges, app, recovery = run_trial(
        make_app,
        base_env,
        stripe,
        SPLIT_FLAGS,
        "process-transfer",
        lambda: seed_orders(mirakl, stripe),
        split_settled,
        seed=seed,
        most_posts=ORDERS,
    )

    with app.app_context():
        assert split_settled(), recovery
        assert_split_exactly_once(stripe, charges)


def test_a_killed_split_run_is_rerun_to_exactly_once(make_app, base_env, mirakl, stripe):
    """The job run itself (CLI, money jobs inline) dies mid-way, three times, while Stripe
    loses some answers; the next run finishes the work exactly once."""
    flags = {**SPLIT_FLAGS, "JOB_LEASE_TTL": "1"}
    app = make_app(**flags)
    with app.app_context():
        charges = seed_orders(mirakl, stripe)
    # Slow answers keep the run busy long enough for the kill to land mid-way.
    stripe.set_faults(
        after_rate=0.3,
        latency_ms=150,
        seed=7,
        paths=list(harness.MONEY_PATHS),
        methods=["POST"],
    )
    for seed in harness.seeds()[:3]:
        rng = random.Random(seed)
        cli = harness.start_connector({**base_env, **flags}, "process-transfer")
        kill = harness.Kill.draw(rng, ORDERS - 1)  # mid-run
        harness.kill_at(cli, lambda: harness.stripe_posts(stripe), kill)
    stripe.clear_faults()
    recovery_app = make_app(**flags, PENDING_RECHECK_AFTER="0")
    with recovery_app.app_context():
        cli_runs = db.session.execute(select(func.count()).select_from(JobRun)).scalar_one()
        assert cli_runs == 3
        outcome, deadline = None, time.monotonic() + 10
        while outcome != "succeeded" and time.monotonic() < deadline:
            run, _ = run_job("process-transfer", get_job("process-transfer").run, inline=True)
            outcome = run.outcome  # "skipped" while the killed run's lease is still held
            time.sleep(0.2 if outcome == "skipped" else 0)
        assert outcome == "succeeded"
        assert split_settled()
        assert_split_exactly_once(stripe, charges)
        # The killed runs do not show as running forever: the run that took their lease
        # closed them as failed, saying why.
        runs = db.session.execute(select(JobRun).where(JobRun.id <= cli_runs)).scalars().all()
        outcomes = [(r.outcome, r.error) for r in runs]
        assert all(r.finished_at is not None for r in runs), outcomes
        # A run killed after recording its outcome (while exiting) is simply "succeeded".
        assert ("failed", ABANDONED) in outcomes
        # A run started while a killed one still held the lease skipped its turn.
        assert set(outcomes) <= {("failed", ABANDONED), ("succeeded", None), ("skipped", None)}


# ---------------------------------------------------------------- refunds


def seed_refunds(mirakl: MiraklControl, stripe: StripeControl) -> dict[str, str]:
    """REFUNDS product orders, each paid, split (a real transfer) and with one refund
    waiting for payment; returns Mirakl refund id → charge id."""
    mapping = add_seller(stripe)
    charges = {}
    for i in range(REFUNDS):
        order_id, refund_id = f"R-{i}-A", str(1100 + i)
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        transfer = get_stripe().create_transfer(
            amount=ORDER_AMOUNT,
            currency="eur",
            destination=mapping.stripe_account_id,
            metadata={"miraklId": order_id, "miraklShopId": "1"},
            idempotency_key=f"chaos-split-{order_id}",
            source_transaction=charge,
        )
        row = StripeTransfer(
            mirakl_id=order_id,
            type=TransferType.PRODUCT_ORDER.value,
            account_mapping_id=mapping.id,
            transfer_id=transfer["id"],
            transaction_id=charge,
            amount=ORDER_AMOUNT,
            currency="eur",
            mirakl_shop_id=1,
        )
        transitions.create(row, TransferStatus.CREATED, actor="test")
        db.session.commit()
        mirakl.add_orders([make_product_order(order_id, refunds=[make_refund_line(refund_id)])])
        charges[refund_id] = charge
    return charges


def refunds_settled() -> bool:
    return (
        count_rows(StripeRefund, RefundStatus.PENDING.value) == 0
        and count_rows(StripeTransfer, TransferStatus.PENDING.value) == 0
        and count_rows(StripeTransfer, TransferStatus.CREATED.value) == 2 * REFUNDS
    )


def assert_refunds_exactly_once(
    stripe: StripeControl, mirakl: MiraklControl, charges: dict[str, str]
) -> None:
    refunds = live(stripe.objects("refunds"))
    assert harness.count_by(refunds, "miraklRefundId") == Counter(dict.fromkeys(charges, 1))
    by_refund = {r["metadata"]["miraklRefundId"]: r for r in refunds}
    rows = db.session.execute(select(StripeRefund)).scalars().all()
    assert sorted(r.mirakl_refund_id for r in rows) == sorted(charges)
    for row in rows:
        sent = by_refund[row.mirakl_refund_id]
        assert (row.status, row.stripe_refund_id) == (RefundStatus.CREATED.value, sent["id"])
        assert (sent["amount"], sent["charge"]) == (REFUND_AMOUNT, charges[row.mirakl_refund_id])
    # The seller's share comes back once per refund: 12.34 minus 1.23 commission.
    reversals = stripe.objects("reversals")
    assert harness.count_by(reversals, "miraklId") == Counter(dict.fromkeys(charges, 1))
    assert {r["amount"] for r in reversals} == {REFUND_AMOUNT - 123}
    reversal_rows = db.session.execute(
        select(StripeTransfer).where(StripeTransfer.type == TransferType.REFUND.value)
    ).scalars()
    assert sorted((r.mirakl_id, r.status, r.transfer_id) for r in reversal_rows) == sorted(
        (r["metadata"]["miraklId"], TransferStatus.CREATED.value, r["id"]) for r in reversals
    )
    assert_mirakl_told_once(mirakl, {r.mirakl_refund_id: r.stripe_refund_id for r in rows})


def assert_mirakl_told_once(mirakl: MiraklControl, stripe_ids: dict[str, str]) -> None:
    """PA02 accepted once per refund; a repeat (its first answer lost with a killed worker)
    was refused as no longer waiting; Mirakl holds each refund REFUNDED with its Stripe id."""
    accepted: Counter[str] = Counter()
    for put in mirakl.requests(path=PA02, method="PUT"):
        ids = [str(entry["refund_id"]) for entry in put["body"]["refunds"]]
        if put["status"] in (200, 204):
            accepted.update(ids)
        else:
            assert put["status"] == 400, put
    assert accepted == Counter(dict.fromkeys(stripe_ids, 1))
    state = {
        str(refund["id"]): refund
        for order in mirakl.state()["orders"]
        for line in order["order_lines"]
        for refund in line.get("refunds") or []
    }
    for refund_id, stripe_id in stripe_ids.items():
        assert (state[refund_id]["state"], state[refund_id]["transaction_number"]) == (
            "REFUNDED",
            stripe_id,
        )


@pytest.mark.parametrize("seed", harness.seeds())
def test_refunds_refund_and_reverse_once_when_workers_die(make_app, base_env, mirakl, stripe, seed):
    charges, app, recovery = run_trial(
        make_app,
        base_env,
        stripe,
        REFUND_FLAGS,
        "process-refund",
        lambda: seed_refunds(mirakl, stripe),
        refunds_settled,
        seed=seed,
        most_posts=REFUNDS,
        # Odd seeds kill right after Mirakl accepted a PA02, before the row is CREATED.
        kill_on=(lambda: len(mirakl.requests(path=PA02, method="PUT"))) if seed % 2 else None,
    )

    with app.app_context():
        assert refunds_settled(), recovery
        assert_refunds_exactly_once(stripe, mirakl, charges)


# ---------------------------------------------------------------- payouts


FEES = {"TRANSFER_SUBSCRIPTION": 999, "TRANSFER_EXTRA_INVOICES": 9876}
CREDITS = {"TRANSFER_EXTRA_CREDITS": 5678}
PAYOUT_AMOUNT = 1234


def seed_invoices(mirakl: MiraklControl, stripe: StripeControl) -> list[str]:
    """INVOICES invoices of shop 1 (make_invoice's amounts); returns their ids."""
    add_seller(stripe)
    mirakl.add_invoices([make_invoice(i, 1) for i in range(1, INVOICES + 1)])
    return [str(i) for i in range(1, INVOICES + 1)]


def payouts_settled() -> bool:
    return (
        count_rows(StripePayout, PayoutStatus.PENDING.value) == 0
        and count_rows(StripeTransfer, TransferStatus.PENDING.value) == 0
    )


def assert_payouts_exactly_once(stripe: StripeControl, invoices: list[str]) -> None:
    transfers = stripe.objects("transfers")
    sent = Counter(
        (t["metadata"]["connectorType"], t["metadata"]["miraklId"], t["amount"]) for t in transfers
    )
    amounts = {**FEES, **CREDITS}
    expected = Counter((kind, i, amount) for i in invoices for kind, amount in amounts.items())
    assert sent == expected
    by_key = {(t["metadata"]["connectorType"], t["metadata"]["miraklId"]): t for t in transfers}
    for row in db.session.execute(select(StripeTransfer)).scalars():
        assert (row.status, row.transfer_id) == (
            TransferStatus.CREATED.value,
            by_key[(row.type, row.mirakl_id)]["id"],
        )
    payouts = live(stripe.objects("payouts"))
    assert harness.count_by(payouts, "invoiceId") == Counter(dict.fromkeys(invoices, 1))
    by_invoice = {p["metadata"]["invoiceId"]: p for p in payouts}
    rows = db.session.execute(select(StripePayout)).scalars().all()
    assert sorted(str(r.mirakl_invoice_id) for r in rows) == invoices
    for row in rows:
        paid = by_invoice[str(row.mirakl_invoice_id)]
        assert (row.status, row.payout_id, paid["amount"]) == (
            PayoutStatus.CREATED.value,
            paid["id"],
            PAYOUT_AMOUNT,
        )


@pytest.mark.parametrize("seed", harness.seeds())
def test_payouts_pay_each_invoice_once_when_workers_die(make_app, base_env, mirakl, stripe, seed):
    invoices, app, recovery = run_trial(
        make_app,
        base_env,
        stripe,
        PAYOUT_FLAGS,
        "process-payout",
        lambda: seed_invoices(mirakl, stripe),
        payouts_settled,
        seed=seed,
        most_posts=3 * INVOICES,  # the first run sends the invoices' transfers only
    )

    with app.app_context():
        assert payouts_settled(), recovery
        assert_payouts_exactly_once(stripe, invoices)


# ---------------------------------------------------------------- leftovers of dead workers


def leave_as_dead_worker(job_id: str, state: str) -> None:
    """Leave the queued money job as a worker SIGKILLed at that moment leaves it in Redis."""
    queue = get_queue(MONEY_QUEUE)
    job = Job.fetch(job_id, connection=queue.connection)
    # RQ 3 workers take a job with BLMOVE into the intermediate queue, then mark it started.
    queue.connection.lmove(queue.key, queue.intermediate_queue_key, "LEFT", "RIGHT")
    if state == "started":
        job.set_status(JobStatus.STARTED)
    elif state == "failed":
        job.set_status(JobStatus.FAILED)


@pytest.mark.parametrize("state", ["taken from the queue", "started", "failed"])
def test_a_job_left_by_a_dead_worker_does_not_block_its_row(make_app, mirakl, stripe, state):
    app = make_app(**SPLIT_FLAGS, PENDING_RECHECK_AFTER="0")
    with app.app_context():
        charges = seed_orders(mirakl, stripe)
        harness.run_queued("process-transfer")
        [first, *_] = db.session.execute(select(StripeTransfer.id)).scalars()
        leave_as_dead_worker(job_id("transfer", first), state)
        harness.drain_money_queue()  # the other orders are paid; the first one's job is lost
        assert count_rows(StripeTransfer, TransferStatus.PENDING.value) == 1

        run = harness.run_queued("process-transfer")  # the sweep finds the row again

        assert "transfers: 1 dispatched, 1 queued" in run.summary
        harness.drain_money_queue()
        assert split_settled()
        assert_split_exactly_once(stripe, charges)
