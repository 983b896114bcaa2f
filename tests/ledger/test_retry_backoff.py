"""A row Stripe keeps refusing is retried automatically with a growing wait, not every run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sandbox.mirakl.demo import make_product_order
from tests.integration.test_process_transfer import SPLIT_ON, connect_shop, rows, run_cli
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Notification, StripeTransfer
from webapp.services.ledger.attempts import RETRY_BACKOFF_CAP, retry_backoff
from webapp.services.split.sync import retry_transfers


@pytest.mark.parametrize(
    ("attempt", "wait"),
    [
        (1, timedelta(minutes=5)),
        (2, timedelta(minutes=10)),
        (4, timedelta(minutes=40)),
        (20, RETRY_BACKOFF_CAP),
    ],
)
def test_backoff_doubles_from_five_minutes_up_to_a_day(app, attempt, wait):
    app.config["RETRY_BACKOFF_BASE"] = 300
    assert retry_backoff(attempt) == wait


def test_failed_transfer_waits_for_its_backoff_but_the_operator_can_retry_now(
    make_app, mirakl, stripe
):
    app = make_app(**SPLIT_ON, RETRY_BACKOFF_BASE="300")
    with app.app_context():
        connect_shop(1, account_id="acct_closed")
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        mirakl.add_orders([make_product_order("B-1-A", transaction_number=charge)])
        assert run_cli(app).exit_code == 0
        row = rows()["B-1-A"]
        assert (row.status, row.attempt) == ("TRANSFER_FAILED", 1)
        wait = row.next_attempt_at - utcnow()
        assert timedelta(minutes=4) < wait <= timedelta(minutes=5)

        # The next automatic runs leave it alone: no new Stripe call, no new notification.
        posts = len(stripe.requests("/v1/transfers", "POST"))
        assert run_cli(app).exit_code == 0
        assert len(stripe.requests("/v1/transfers", "POST")) == posts
        assert rows()["B-1-A"].attempt == 1
        assert len(db.session.execute(select(Notification)).scalars().all()) == 1

        # Once the wait is over, the run retries it (refused again: attempt 2, ten minutes).
        db.session.execute(update(StripeTransfer).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert run_cli(app).exit_code == 0
        row = rows()["B-1-A"]
        assert (row.status, row.attempt) == ("TRANSFER_FAILED", 2)
        assert timedelta(minutes=9) < row.next_attempt_at - utcnow() <= timedelta(minutes=10)
        assert len(db.session.execute(select(Notification)).scalars().all()) == 2

        # An operator's retry does not wait.
        assert retry_transfers([row.id], actor="ops@example.com") == [row.id]
        assert rows()["B-1-A"].status == "TRANSFER_PENDING"
