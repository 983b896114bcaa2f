"""The status writer in detail: what a move writes (row, history, outbox) and what it refuses.

Each check here holds one line of ``ledger/transitions.py``; docs/testing.md ("Mutation
testing") lists which change of the code each one catches.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select, update

from tests.ledger.conftest import new_transfer
from webapp.errors import IllegalTransition
from webapp.extensions import db
from webapp.models import (
    REASON_LENGTH,
    Notification,
    OperationEvent,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.ledger import transitions

LONG_AGO = datetime(2001, 1, 1)


def events() -> list[tuple]:
    rows = db.session.execute(select(OperationEvent).order_by(OperationEvent.id)).scalars()
    return [
        (e.operation, e.operation_id, e.from_status, e.to_status, e.reason, e.attempt, e.actor)
        for e in rows
    ]


def notifications() -> int:
    return db.session.scalar(select(func.count()).select_from(Notification))


def unsaved_transfer(status: str | None = None) -> StripeTransfer:
    return StripeTransfer(
        mirakl_id="O-9-A",
        type=TransferType.PRODUCT_ORDER,
        amount=100,
        currency="eur",
        status=status,
    )


@pytest.mark.parametrize(
    ("reason", "stored"),
    [
        (None, None),
        ("", ""),
        ("x" * REASON_LENGTH, "x" * REASON_LENGTH),  # exactly the column: kept whole
        ("x" * (REASON_LENGTH + 1), "x" * (REASON_LENGTH - 1) + "…"),
        ("y" * 5000, "y" * (REASON_LENGTH - 1) + "…"),
    ],
)
def test_reasons_are_cut_to_the_column_with_an_ellipsis(reason, stored):
    assert transitions.truncate_reason(reason) == stored


@pytest.mark.parametrize(
    ("row", "name"),
    [
        (StripeTransfer(), "transfer"),
        (StripeRefund(), "refund"),
        (StripePayout(), "payout"),
        (PaymentMapping(), "payment"),
    ],
)
def test_operation_names(row, name):
    assert transitions.operation_name(row) == name


def test_can_transition_reads_the_rows_machine():
    assert transitions.can_transition(unsaved_transfer(), TransferStatus.PENDING)
    assert not transitions.can_transition(unsaved_transfer(), TransferStatus.FAILED)
    assert transitions.can_transition(unsaved_transfer(TransferStatus.PENDING), "TRANSFER_CREATED")
    assert not transitions.can_transition(
        unsaved_transfer(TransferStatus.CREATED), "TRANSFER_FAILED"
    )
    payment = PaymentMapping(status=PaymentMappingStatus.CAPTURED)
    assert not transitions.can_transition(payment, PaymentMappingStatus.TO_CAPTURE)
    assert transitions.can_transition(StripePayout(status=PayoutStatus.CREATED), "PAYOUT_FAILED")
    assert not transitions.can_transition(
        StripeRefund(status=RefundStatus.CREATED), "REFUND_FAILED"
    )


def test_create_writes_the_first_status_and_its_history(dapp):
    row = unsaved_transfer()
    transitions.create(row, TransferStatus.ON_HOLD, "No stripe account", actor="sync")
    db.session.commit()
    stored = db.session.execute(select(StripeTransfer)).scalar_one()
    assert (stored.status, stored.status_reason) == ("TRANSFER_ON_HOLD", "No stripe account")
    assert events() == [
        ("transfer", row.id, None, "TRANSFER_ON_HOLD", "No stripe account", 0, "sync")
    ]


def test_create_all_names_each_new_row_in_its_history(dapp):
    payout = StripePayout(mirakl_invoice_id=7, amount=10, currency="eur")
    refund = StripeRefund(mirakl_refund_id="R-1", amount=5, currency="eur")
    transitions.create_all(
        [(payout, PayoutStatus.PENDING, None), (refund, RefundStatus.ABORTED, "r" * 2000)],
        actor="sync",
    )
    db.session.commit()
    assert refund.status_reason == "r" * (REASON_LENGTH - 1) + "…"
    assert events() == [
        ("payout", payout.id, None, "PAYOUT_PENDING", None, 0, "sync"),
        ("refund", refund.id, None, "REFUND_ABORTED", refund.status_reason, 0, "sync"),
    ]
    transitions.create_all([], actor="sync")  # nothing new: nothing written
    db.session.commit()
    assert len(events()) == 2


def test_create_refuses_a_saved_row_and_a_status_no_row_starts_in(dapp):
    with pytest.raises(IllegalTransition) as refused:
        transitions.create(unsaved_transfer(), TransferStatus.FAILED, actor="sync")
    assert str(refused.value) == "transfer: cannot create a row in status TRANSFER_FAILED"
    db.session.rollback()
    saved = new_transfer()
    with pytest.raises(IllegalTransition, match="^transfer: cannot create a row in status"):
        transitions.create(saved, TransferStatus.PENDING, actor="sync")
    db.session.rollback()
    assert [e[3] for e in events()] == ["TRANSFER_PENDING"]  # only new_transfer's own


def test_refusals_name_the_row_and_the_move(dapp):
    with pytest.raises(IllegalTransition) as new_row:
        transitions.transition(unsaved_transfer(), TransferStatus.FAILED)
    assert str(new_row.value) == "transfer None: new → TRANSFER_FAILED is not allowed"
    row = new_transfer(status=TransferStatus.IGNORED)
    with pytest.raises(IllegalTransition) as ignored:
        transitions.transition(row, TransferStatus.PENDING)
    assert str(ignored.value) == (
        f"transfer {row.id}: TRANSFER_IGNORED → TRANSFER_PENDING is not allowed"
    )


def test_a_move_writes_row_history_and_memory_alike(dapp):
    row = new_transfer()
    db.session.execute(
        update(StripeTransfer).values(status_reason="waiting", modification_datetime=LONG_AGO)
    )
    db.session.commit()

    assert transitions.transition(
        row, TransferStatus.FAILED, "No such destination", actor="job", attempt=3
    )
    # In memory, before any reload: what was written, with nothing left to flush.
    assert (row.status, row.status_reason, row.attempt) == (
        "TRANSFER_FAILED",
        "No such destination",
        3,
    )
    assert not db.session.dirty
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(StripeTransfer, row.id)
    assert (stored.status, stored.status_reason, stored.attempt) == (
        "TRANSFER_FAILED",
        "No such destination",
        3,
    )
    assert stored.modification_datetime > LONG_AGO
    assert events()[1:] == [
        ("transfer", row.id, "TRANSFER_PENDING", "TRANSFER_FAILED", "No such destination", 3, "job")
    ]
    assert notifications() == 1


def test_a_move_that_keeps_the_reason_records_it_in_history(dapp):
    row = new_transfer()
    transitions.transition(row, TransferStatus.ON_HOLD, "No stripe account", actor="sync")
    transitions.transition(row, TransferStatus.PENDING, actor="sync")  # reason kept
    db.session.commit()
    assert row.status_reason == "No stripe account"
    assert [e[2:5] for e in events()] == [
        (None, "TRANSFER_PENDING", None),
        ("TRANSFER_PENDING", "TRANSFER_ON_HOLD", "No stripe account"),
        ("TRANSFER_ON_HOLD", "TRANSFER_PENDING", "No stripe account"),
    ]


def test_staying_put_is_history_only_when_the_reason_changes(dapp):
    row = new_transfer()
    transitions.transition(row, TransferStatus.ON_HOLD, "No stripe account", actor="sync")
    before = events()

    assert transitions.transition(row, TransferStatus.ON_HOLD, "No stripe account")
    assert transitions.transition(row, TransferStatus.ON_HOLD)  # reason kept
    db.session.commit()
    assert events() == before

    transitions.transition(row, TransferStatus.ON_HOLD, "Account disabled", actor="sync")
    db.session.commit()
    assert events()[-1][2:5] == ("TRANSFER_ON_HOLD", "TRANSFER_ON_HOLD", "Account disabled")


def test_only_a_move_into_failed_writes_a_notification(dapp):
    row = new_transfer()
    transitions.transition(row, TransferStatus.CREATED, None, transfer_id="tr_1")
    payout = StripePayout(mirakl_invoice_id=8, amount=10, currency="eur")
    transitions.create(payout, PayoutStatus.PENDING)
    transitions.transition(payout, PayoutStatus.ON_HOLD, "waiting")
    db.session.commit()
    assert notifications() == 0
    transitions.transition(payout, PayoutStatus.PENDING)
    transitions.transition(payout, PayoutStatus.FAILED, "closed")
    db.session.commit()
    assert notifications() == 1
