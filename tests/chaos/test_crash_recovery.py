"""Crash tests: money moves exactly once when workers and job runs die with SIGKILL.

Each trial (seeded; ``CHAOS_TRIALS`` trials per workflow, 10 by default) runs the workflow's
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

import pytest
from sqlalchemy import func, select

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.demo import make_invoice, make_product_order, make_refund_line
from sandbox.stripe.control import StripeControl
from tests.chaos import harness
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services import transitions
from webapp.services.clients import get_stripe

pytestmark = pytest.mark.chaos

ORDERS = 4  # product orders per split trial
REFUNDS = 3  # refunds per refund trial (one order each)
INVOICES = 2  # invoices per payout trial (each: 2 fees, 1 credit, 1 payout)
ORDER_AMOUNT = 8073  # seller's share of make_product_order's default order
REFUND_AMOUNT = 1234  # make_refund_line's default amount
SPLIT_FLAGS = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true"}
REFUND_FLAGS = {"ENABLE_PRODUCT_PAYMENT_REFUND": "true"}
PAYOUT_FLAGS: dict[str, str] = {}
MONEY_POSTS = ("/v1/transfers", "/v1/refunds", "/v1/payouts")
PA02 = "/api/payment/refund"


@dataclass(frozen=True)
class Trial:
    """One seeded trial's choices."""

    seed: int
    kills: list[harness.Kill]
    lost_answers: bool

    @classmethod
    def draw(cls, seed: int, most_posts: int) -> Trial:
        rng = random.Random(seed)
        kills = [harness.Kill.draw(rng, most_posts) for _ in range(rng.randint(1, 2))]
        return cls(seed, kills, lost_answers=rng.random() < 0.5)


def run_trial(
    make_app: Callable,
    base_env: dict[str, str],
    stripe: StripeControl,
    flags: dict[str, str],
    job: str,
    trial: Trial,
    is_settled: Callable[[], bool],
) -> harness.Recovery:
    """Queued run, killed workers (and lost answers), then recovery runs."""
    app = make_app(**flags)
    with app.app_context():
        harness.run_queued(job)
    if trial.lost_answers:
        stripe.set_faults(after_rate=0.3, seed=trial.seed, paths=list(MONEY_POSTS), methods=["POST"])
    for kill in trial.kills:
        harness.run_killed(stripe, {**base_env, **flags}, kill, ("worker", MONEY_QUEUE_NAME, "--burst"))
    stripe.clear_faults()
    recovery_app = make_app(**flags, PENDING_RECHECK_AFTER="0")
    return harness.recover(recovery_app, job, is_settled)


MONEY_QUEUE_NAME = "money"


def pending_count(model: type, status: str) -> int:
    db.session.expire_all()
    return db.session.execute(
        select(func.count()).select_from(model).where(model.status == status)
    ).scalar_one()


def add_seller(stripe: StripeControl, shop_id: int = 1) -> AccountMapping:
    """A connected account with 1000.00 EUR available, mapped to ``shop_id``."""
    acct = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key=f"chaos-account-{shop_id}"
    )["id"]
    stripe.set_account(acct, charges_enabled=True, payouts_enabled=True)
    stripe.set_balance(acct, "eur", 100000)
    mapping = AccountMapping(
        mirakl_shop_id=shop_id, stripe_account_id=acct, payout_enabled=True, payin_enabled=True
    )
    db.session.add(mapping)
    db.session.commit()
    return mapping


# ---------------------------------------------------------------- payment split


def seed_orders(mirakl: MiraklControl, stripe: StripeControl) -> dict[str, str]:
    """ORDERS paid product orders of shop 1; returns order id → charge id."""
    add_seller(stripe)
    charges = {}
    for i in range(ORDERS):
        order_id = f"C-{i}-A"
        charges[order_id] = stripe.create_charge(amount=8472, currency="eur")["id"]
        mirakl.add_orders([make_product_order(order_id, transaction_number=charges[order_id])])
    stripe.clear_requests()
    return charges


def assert_split_exactly_once(stripe: StripeControl, charges: dict[str, str]) -> None:
    transfers = stripe.objects("transfers")
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
    app = make_app(**SPLIT_FLAGS)
    with app.app_context():
        charges = seed_orders(mirakl, stripe)
    trial = Trial.draw(seed, ORDERS)

    recovery = run_trial(
        make_app,
        base_env,
        stripe,
        SPLIT_FLAGS,
        "process-transfer",
        trial,
        lambda: pending_count(StripeTransfer, TransferStatus.PENDING.value) == 0,
    )

    with app.app_context():
        assert pending_count(StripeTransfer, TransferStatus.PENDING.value) == 0, recovery
        assert_split_exactly_once(stripe, charges)
