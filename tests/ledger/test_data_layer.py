"""The data layer on both SQLite and PostgreSQL: migrations, transitions, leases, runs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, text, update

from tests.ledger.conftest import new_transfer
from webapp.clock import utcnow
from webapp.errors import IllegalTransition, MiraklUnavailable
from webapp.extensions import db
from webapp.jobs.runner import run_job
from webapp.models import (
    AccountMapping,
    JobRun,
    Lease,
    Notification,
    OperationEvent,
    StripePayout,
    StripeTransfer,
    TransferStatus,
)
from webapp.services.ledger import checkpoints, leases, transitions


def test_migrations_create_every_table_and_go_down_and_up(dapp):
    names = set(inspect(db.engine).get_table_names())
    assert {
        "account_mapping",
        "config",
        "payment_mapping",
        "stripe_transfer",
        "stripe_refund",
        "stripe_payout",
        "operation_event",
        "job_run",
        "lease",
        "webhook_event",
        "notification",
        "operator_user",
        "pending_shop",
    } <= names
    uniques = {u["name"] for u in inspect(db.engine).get_unique_constraints("stripe_transfer")}
    assert "transfer" in uniques  # the reference's (type, mirakl_id) constraint name
    db.session.remove()
    downgrade(revision="base")
    assert "stripe_transfer" not in set(inspect(db.engine).get_table_names())
    upgrade()
    assert "stripe_transfer" in set(inspect(db.engine).get_table_names())


def test_unique_type_and_mirakl_id(dapp):
    new_transfer()
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        new_transfer()
    db.session.rollback()


def test_transition_writes_history_and_fields(dapp):
    row = new_transfer()
    assert transitions.transition(
        row, TransferStatus.CREATED, None, actor="job", transfer_id="tr_1"
    )
    db.session.commit()
    stored = db.session.execute(select(StripeTransfer)).scalar_one()
    assert (stored.status, stored.transfer_id) == ("TRANSFER_CREATED", "tr_1")
    history = db.session.execute(select(OperationEvent).order_by(OperationEvent.id)).scalars()
    assert [(e.from_status, e.to_status) for e in history] == [
        (None, "TRANSFER_PENDING"),
        ("TRANSFER_PENDING", "TRANSFER_CREATED"),
    ]


def test_transition_is_compare_and_set(dapp):
    row = new_transfer()
    # Another worker moved the row after we read it.
    db.session.execute(
        update(StripeTransfer).values(status="TRANSFER_CREATED", transfer_id="tr_other")
    )
    db.session.commit()
    row.status = "TRANSFER_PENDING"  # our stale view
    db.session.expunge(row)
    db.session.add(row)
    from sqlalchemy.orm.attributes import set_committed_value

    set_committed_value(row, "status", "TRANSFER_PENDING")
    assert transitions.transition(row, TransferStatus.FAILED, "boom") is False
    assert row.status == "TRANSFER_CREATED"  # refreshed to the winner's state
    assert db.session.execute(select(Notification)).first() is None


def test_illegal_transitions_raise(dapp):
    row = new_transfer(status=TransferStatus.ABORTED)
    with pytest.raises(IllegalTransition, match="ABORTED → TRANSFER_PENDING"):
        transitions.transition(row, TransferStatus.PENDING)
    created = new_transfer("O-2-A")
    transitions.transition(created, TransferStatus.CREATED, transfer_id="tr_2")
    with pytest.raises(IllegalTransition):
        transitions.transition(created, TransferStatus.FAILED)


def test_failure_writes_one_outbox_notification(dapp):
    mapping = AccountMapping(mirakl_shop_id=1, stripe_account_id="acct_1")
    db.session.add(mapping)
    row = new_transfer()
    row.account_mapping = mapping
    transitions.transition(row, TransferStatus.FAILED, "Insufficient funds", attempt=1)
    db.session.commit()
    notes = db.session.execute(select(Notification)).scalars().all()
    assert len(notes) == 1
    payload = json.loads(notes[0].payload)
    assert notes[0].type == "transfer.failed"
    assert payload == {
        "internalId": row.id,
        "miraklId": "O-1-A",
        "type": "TRANSFER_PRODUCT_ORDER",
        "stripeAccountId": "acct_1",
        "miraklShopId": 1,
        "transferId": None,
        "transactionId": None,
        "amount": 8073,
        "status": "TRANSFER_FAILED",
        "failedReason": "Insufficient funds",
        "currency": "eur",
    }
    # Later saves of the failed row notify nothing more.
    row.amount = 8000
    db.session.commit()
    assert db.session.execute(select(Notification)).scalars().all() == notes


def test_payout_can_fail_after_creation(dapp):
    row = StripePayout(mirakl_invoice_id=5, amount=1234, currency="eur")
    transitions.create(row, "PAYOUT_PENDING")
    transitions.transition(row, "PAYOUT_CREATED", payout_id="po_1")
    assert transitions.transition(row, "PAYOUT_FAILED", "account_closed: closed")
    db.session.commit()
    note = db.session.execute(select(Notification)).scalar_one()
    assert json.loads(note.payload)["miraklInvoiceId"] == 5


def test_reasons_are_truncated_to_1024(dapp):
    row = new_transfer()
    transitions.transition(row, TransferStatus.ON_HOLD, "x" * 5000)
    db.session.commit()
    assert len(db.session.execute(select(StripeTransfer)).scalar_one().status_reason) == 1024


def test_leases(dapp):
    assert leases.acquire("job:x", "run:1", ttl=30)
    assert not leases.acquire("job:x", "run:2", ttl=30)
    assert leases.find("job:x").holder == "run:1"
    assert leases.renew("job:x", "run:1", ttl=30)
    assert not leases.renew("job:x", "run:2", ttl=30)
    leases.release("job:x", "run:1")
    assert leases.acquire("job:x", "run:2", ttl=30)
    # A holder that died stops renewing; once expired anyone may take it.
    db.session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert leases.find("job:x") is None
    assert leases.acquire("job:x", "run:3", ttl=30)


def test_checkpoints(dapp):
    assert checkpoints.get_checkpoint("seller_settlement_checkpoint") is None
    checkpoints.set_checkpoint("seller_settlement_checkpoint", "2024-01-02T00:00:00Z")
    db.session.commit()
    assert checkpoints.get_checkpoint("seller_settlement_checkpoint") == "2024-01-02T00:00:00Z"
    with pytest.raises(ValueError):
        checkpoints.get_checkpoint("anything_else")


def test_run_job_records_success_failure_and_lock(dapp):
    def ok(ctx):
        ctx.report("orders", {"fetched": 3, "PENDING": 2})

    run, ctx = run_job("demo", ok)
    assert run.outcome == "succeeded"
    assert ctx.lines == ["orders: 3 fetched, 2 PENDING"]
    assert json.loads(run.counts) == {"orders": {"fetched": 3, "PENDING": 2}}

    def mirakl_down(ctx):
        raise MiraklUnavailable("OR11 GET /api/orders: HTTP 503")

    run, _ = run_job("demo", mirakl_down)
    assert (run.outcome, run.error) == ("failed", "OR11 GET /api/orders: HTTP 503")

    assert leases.acquire("job:demo", "run:someone-else", ttl=30)
    run, ctx = run_job("demo", ok)
    assert run.outcome == "skipped"
    assert "demo is already running since" in ctx.lines[0]
    runs = db.session.execute(select(JobRun.outcome).order_by(JobRun.id)).scalars().all()
    assert runs == ["succeeded", "failed", "skipped"]
    assert (
        db.session.execute(
            text(
                "SELECT count(*) FROM lease WHERE holder LIKE 'run:%' "
                "AND holder != 'run:someone-else'"
            )
        ).scalar()
        == 0
    )
