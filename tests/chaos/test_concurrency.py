"""Concurrency: the same job from every trigger at once, many workers on one money queue.

Real processes (the CLI and ``connector worker``), real Redis and PostgreSQL, the sandboxes
over HTTP. What must hold whatever the interleaving: one run of a job does the work at a
time (the others skip, or are not queued), every row is sent to Stripe exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from sandbox.mirakl.demo import make_invoice, make_product_order
from sandbox.stripe.events import sign_payload
from webapp.extensions import db
from webapp.jobs.runner import run_job
from webapp.jobs.scheduler import enqueue_run
from webapp.jobs.table import get_job
from webapp.jobs.worker import make_worker
from webapp.models import (
    AccountMapping,
    JobRun,
    Notification,
    StripePayout,
    StripeTransfer,
    TransferStatus,
    TransferType,
    WebhookEvent,
)
from webapp.services.clients import get_stripe
from webapp.services.dispatch.money_jobs import run_money_job
from webapp.services.ledger import attempts, transitions
from webapp.services.queueing.queues import MONEY_QUEUE, get_queue

pytestmark = pytest.mark.chaos

SPLIT_ON = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true"}
PROCESS_TIMEOUT = 90  # seconds any subprocess may take before the test fails


# ---------------------------------------------------------------- helpers


def connector(env: Mapping[str, str], *args: str) -> subprocess.Popen:
    """Start ``flask --app wsgi connector ARGS`` in a new process with the test settings."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "connector", *args],
        env={**os.environ, **env},
        cwd=os.getcwd(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for a process; return its exit code, stdout and stderr."""
    try:
        out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not finish:\n{out}\n{err}")
    return proc.returncode, out, err


def seller(stripe, shop_id: int = 1) -> str:
    """A connected account with 1000.00 EUR available, mapped to ``shop_id``."""
    acct = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key=f"chaos-account-{shop_id}"
    )["id"]
    stripe.set_account(acct, charges_enabled=True, payouts_enabled=True)
    stripe.set_balance(acct, "eur", 100000)
    db.session.add(
        AccountMapping(
            mirakl_shop_id=shop_id, stripe_account_id=acct, payout_enabled=True, payin_enabled=True
        )
    )
    db.session.commit()
    return acct


def mirakl_ids(stripe, kind: str = "transfers", key: str = "miraklId") -> Counter:
    """How many Stripe objects of ``kind`` carry each Mirakl id in their metadata."""
    return Counter((o.get("metadata") or {}).get(key) for o in stripe.objects(kind))


def job_runs(name: str) -> list[JobRun]:
    db.session.expire_all()
    return list(
        db.session.execute(select(JobRun).where(JobRun.job == name).order_by(JobRun.id)).scalars()
    )


def assert_one_run_at_a_time(runs: list[JobRun]) -> None:
    """Runs that did the work never overlapped (a run's row is written just before it takes
    the lease, hence the small tolerance)."""
    worked = sorted((r for r in runs if r.outcome != "skipped"), key=lambda r: r.started_at)
    for before, after in zip(worked, worked[1:], strict=False):
        assert after.started_at >= before.finished_at - timedelta(seconds=0.5), (before, after)
    for run in runs:
        if run.outcome == "skipped":
            assert "process-transfer is already running since" in run.summary, run.summary


# ---------------------------------------------------------------- (a) one job, three triggers


def test_scheduler_run_now_and_cli_at_once_run_the_job_once(make_app, base_env, mirakl, stripe):
    orders = 12
    app = make_app(**SPLIT_ON)
    with app.app_context():
        acct = seller(stripe)
        for n in range(orders):
            charge = stripe.create_charge(amount=8472, currency="eur")["id"]
            mirakl.add_orders([make_product_order(f"C-{n}-A", transaction_number=charge)])
        # Slow answers keep each run busy for 5 s or more, so the triggers overlap even when
        # one process starts seconds after the other.
        mirakl.set_faults(latency_ms=1000)
        stripe.set_faults(latency_ms=300, paths=["/v1/charges"], methods=["GET"])
        env = {**base_env, **SPLIT_ON}

        assert enqueue_run("process-transfer", "scheduler") is True
        assert enqueue_run("process-transfer", "console") is False  # already queued
        worker = connector(env, "worker", "jobs", "money", "--burst")
        cli = connector(env, "process-transfer")
        run_now: list[bool] = []
        while worker.poll() is None or cli.poll() is None:
            if not any(run_now):  # "run now" clicked until it is accepted once
                run_now.append(enqueue_run("process-transfer", "console"))
            time.sleep(0.3)
        stripe.clear_faults()
        worker_code, _, worker_err = finish(worker)
        cli_code, cli_out, cli_err = finish(cli)
        assert (worker_code, cli_code) == (0, 0), (worker_err, cli_err)
        if any(run_now):  # queued after the scheduler's run had ended: let it run too
            mirakl.clear_faults()
            assert finish(connector(env, "worker", "jobs", "money", "--burst"))[0] == 0

        runs = job_runs("process-transfer")
        triggers = Counter(r.trigger for r in runs)
        assert triggers["scheduler"] == 1 and triggers["cli"] == 1
        assert triggers["console"] == sum(run_now)
        assert "skipped" in {r.outcome for r in runs}, [(r.trigger, r.outcome) for r in runs]
        assert {r.outcome for r in runs} <= {"succeeded", "skipped"}
        assert_one_run_at_a_time(runs)
        skipped_cli = next(r for r in runs if r.trigger == "cli").outcome == "skipped"
        if skipped_cli:
            assert cli_out.startswith("skipped: process-transfer is already running since")

        assert mirakl_ids(stripe) == {f"C-{n}-A": 1 for n in range(orders)}
        rows = db.session.execute(select(StripeTransfer)).scalars().all()
        assert sorted(r.status for r in rows) == ["TRANSFER_CREATED"] * orders
        assert {t["destination"] for t in stripe.objects("transfers")} == {acct}


# ---------------------------------------------------------------- (b) four workers, one queue


def pending_transfers(mapping_id: int, count: int) -> list[int]:
    """``count`` PENDING extra-credit transfers (platform → seller) of 1.00 to 1.99 EUR."""
    rows = []
    for n in range(count):
        row = StripeTransfer(
            mirakl_id=f"W-{n}",
            type=TransferType.EXTRA_CREDITS.value,
            amount=100 + n,
            currency="eur",
            account_mapping_id=mapping_id,
            mirakl_shop_id=1,
        )
        transitions.create(row, TransferStatus.PENDING, actor="test")
        rows.append(row)
    db.session.commit()
    return [r.id for r in rows]


@pytest.mark.parametrize(
    ("recheck_after", "faults"),
    [("600", False), ("0", False), ("0", True)],
    ids=["default recheck", "recheck at once", "recheck at once, stripe faults"],
)
def test_four_workers_drain_one_money_queue_exactly_once(
    make_app, base_env, stripe, recheck_after, faults
):
    """Every row is queued twice: once as its money job, once under another RQ job id, so two
    workers really do execute the same row concurrently. With ``PENDING_RECHECK_AFTER=0`` a
    claimed row can be claimed again at once, so the idempotency key and the look-up alone
    must keep it single; with Stripe faults, unknown outcomes are settled by later sweeps."""
    count = 30
    overrides = {"PENDING_RECHECK_AFTER": recheck_after}
    app = make_app(**overrides)
    with app.app_context():
        seller(stripe)
        mapping_id = db.session.execute(select(AccountMapping.id)).scalar_one()
        ids = pending_transfers(mapping_id, count)
        queue = get_queue(MONEY_QUEUE)
        from webapp.services.dispatch.money_jobs import dispatch

        assert dispatch("transfer", ids, inline=False) == count
        assert dispatch("transfer", ids, inline=False) == 0  # unique job ids
        for row_id in ids:
            queue.enqueue_call(
                run_money_job, args=("transfer", row_id), job_id=f"dup-transfer-{row_id}"
            )
        assert queue.count == 2 * count
        env = {**base_env, **overrides}

        if faults:
            stripe.set_faults(seed=5, error_rate=0.05, after_rate=0.1, drop_rate=0.05)

        workers = [connector(env, "worker", "money", "--burst") for _ in range(4)]
        results = [finish(w) for w in workers]

        assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for *_, err in results]
        assert queue.count == 0
        for _ in range(8):  # the sweeps of later runs: unknown outcomes are looked up
            db.session.expire_all()
            leftover = attempts.find_dispatchable(StripeTransfer, TransferStatus.PENDING.value)
            if not leftover:
                break
            # Without faults, only a concurrent duplicate (409 while the first held the key).
            assert recheck_after == "0", leftover
            dispatch("transfer", leftover, inline=True)
        stripe.clear_faults()
        db.session.expire_all()
        rows = db.session.execute(select(StripeTransfer)).scalars().all()
        assert Counter(r.status for r in rows) == {"TRANSFER_CREATED": count}
        posts = stripe.requests("/v1/transfers", method="POST")
        if recheck_after == "600":  # a claimed row is never claimed again: one POST per row
            assert len(posts) == count
        made = {t["metadata"]["miraklId"]: t for t in stripe.objects("transfers")}
        assert mirakl_ids(stripe) == {f"W-{n}": 1 for n in range(count)}
        assert {r.mirakl_id: r.transfer_id for r in rows} == {k: t["id"] for k, t in made.items()}
        assert all(made[f"W-{n}"]["amount"] == 100 + n for n in range(count))


# ---------------------------------------------------------------- (c) payout runs and webhooks


def test_two_payout_runs_and_two_failed_webhooks_make_one_new_payout(
    make_app, base_env, mirakl, stripe
):
    env = {"PENDING_RECHECK_AFTER": "0"}
    app: Flask = make_app(**env)
    with app.app_context():
        seller(stripe)
        mirakl.add_invoices([make_invoice(1, subscription="0", other_credits="0")])
        first = app.test_cli_runner().invoke(args=["connector", "process-payout"])
        assert first.exit_code == 0, first.output
        db.session.expire_all()
        (made,) = stripe.objects("payouts")
        event = stripe.fail_payout(made["id"], "account_closed", "The bank account is closed.")
        body = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign_payload(body, "whsec_sellers")}
        mirakl.set_faults(latency_ms=300)  # runs last long enough to meet the webhooks

        answers: list[tuple[int, str]] = []

        def deliver() -> None:
            with app.test_client() as client:
                answer = client.post("/api/public/webhook/sellers", data=body, headers=headers)
                answers.append((answer.status_code, answer.get_data(as_text=True)))

        runs = [connector({**base_env, **env}, "process-payout") for _ in range(2)]
        time.sleep(1.0)  # the runs are starting up: deliver while they read the backlog
        hooks = [threading.Thread(target=deliver) for _ in range(2)]
        for hook in hooks:
            hook.start()
        for hook in hooks:
            hook.join(timeout=PROCESS_TIMEOUT)
        results = [finish(r) for r in runs]
        assert [code for code, _, _ in results] == [0, 0], results
        # One more run, in case the failure landed after both runs had read the backlog.
        last = app.test_cli_runner().invoke(args=["connector", "process-payout"])
        assert last.exit_code == 0, last.output

        assert sorted(answers) == [
            (200, "Event already processed."),
            (200, "Payout status updated to failed."),
        ]
        db.session.expire_all()
        row = db.session.execute(select(StripePayout)).scalar_one()
        payouts = stripe.objects("payouts")
        assert len(payouts) == 2
        assert (row.status, row.attempt) == ("PAYOUT_CREATED", 1)
        assert row.payout_id == payouts[-1]["id"] != made["id"]
        keys = [r["idempotency_key"] for r in stripe.requests("/v1/payouts", method="POST")]
        assert keys == ["mirakl-connector:payout:1:0", "mirakl-connector:payout:1:1"]
        assert db.session.execute(select(func.count(Notification.id))).scalar_one() == 1


def test_concurrent_deliveries_of_one_event_are_handled_once(make_app, mirakl, stripe):
    """Defect found here: each delivery that arrived while the first was being handled saw the
    inbox row still ``received`` and ran the handler again (four deliveries, four "failed at
    the bank" and four "updated" answers). The inbox row is now locked while it is handled."""
    deliveries = 4
    app = make_app()
    with app.app_context():
        seller(stripe)
        mirakl.add_invoices([make_invoice(1, subscription="0", other_credits="0")])
        assert app.test_cli_runner().invoke(args=["connector", "process-payout"]).exit_code == 0
        (made,) = stripe.objects("payouts")
        event = stripe.fail_payout(made["id"], "account_closed", "The bank account is closed.")
        body = json.dumps(event).encode()
        headers = {"Stripe-Signature": sign_payload(body, "whsec_sellers")}
        answers: list[tuple[int, str]] = []
        together = threading.Barrier(deliveries)

        def deliver() -> None:
            with app.test_client() as client:
                together.wait(timeout=30)
                answer = client.post("/api/public/webhook/sellers", data=body, headers=headers)
                answers.append((answer.status_code, answer.get_data(as_text=True)))

        hooks = [threading.Thread(target=deliver) for _ in range(deliveries)]
        for hook in hooks:
            hook.start()
        for hook in hooks:
            hook.join(timeout=PROCESS_TIMEOUT)

        assert sorted(answers) == [(200, "Event already processed.")] * (deliveries - 1) + [
            (200, "Payout status updated to failed.")
        ]
        db.session.expire_all()
        (inbox,) = db.session.execute(select(WebhookEvent)).scalars()
        assert (inbox.stripe_event_id, inbox.status) == (event["id"], "processed")
        row = db.session.execute(select(StripePayout)).scalar_one()
        assert (row.status, row.attempt) == ("PAYOUT_FAILED", 1)
        assert db.session.execute(select(func.count(Notification.id))).scalar_one() == 1


def test_the_split_run_leaves_queued_invoice_transfers_to_their_payout_run(
    make_app, mirakl, stripe
):
    """Defect found here: ``process-transfer`` swept every PENDING transfer row, so when it ran
    while the workers had not yet taken the invoice transfers a payout run had queued, it sent
    them itself, in id order: the seller's subscription fee before the credit that funds it,
    which Stripe refused for insufficient funds (a FAILED row and an operator notification for
    nothing). The split run now sends only order transfers."""
    app = make_app(**SPLIT_ON, MONEY_JOB_CONCURRENCY="1")
    with app.app_context():
        acct = seller(stripe)
        stripe.set_balance(acct, "eur", 0)  # only the credit can fund the fee
        mirakl.add_invoices(
            [make_invoice(1, amount_transferred="0", other_credits="56.78", other_invoices="0")]
        )
        payout_run, _ = run_job("process-payout", get_job("process-payout").run, inline=False)
        assert payout_run.outcome == "succeeded"
        # The credit only: its job queues the fee once done; no payout (0).
        assert get_queue(MONEY_QUEUE).count == 1

        split = app.test_cli_runner().invoke(args=["connector", "process-transfer"])
        make_worker((MONEY_QUEUE,)).work(burst=True)

        assert split.exit_code == 0, split.output
        assert "transfers: nothing to do" in split.output
        db.session.expire_all()
        rows = db.session.execute(select(StripeTransfer).order_by(StripeTransfer.id)).scalars()
        assert [(r.type, r.status, r.attempt) for r in rows] == [
            ("TRANSFER_SUBSCRIPTION", "TRANSFER_CREATED", 0),
            ("TRANSFER_EXTRA_INVOICES", "TRANSFER_ABORTED", 0),  # nothing to collect
            ("TRANSFER_EXTRA_CREDITS", "TRANSFER_CREATED", 0),
        ]
        posts = stripe.requests("/v1/transfers", method="POST")
        assert [r["status"] for r in posts] == [200, 200]
        assert [r["stripe_account"] for r in posts] == [None, acct]  # the credit, then the fee
        assert db.session.execute(select(func.count(Notification.id))).scalar_one() == 0
