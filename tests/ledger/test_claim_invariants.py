"""The invariants that make a money job exclusive, checked directly rather than by timing.

Stripe's idempotency key would absorb a duplicate call, so a suite that only counts Stripe
objects cannot see a claim that is no longer exclusive; these tests look at the claim itself.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from tests.ledger.conftest import new_transfer
from webapp.clock import utcnow
from webapp.errors import IllegalTransition
from webapp.extensions import db
from webapp.models import Notification, OperationEvent, StripeTransfer, TransferStatus
from webapp.services.ledger import attempts, transitions
from webapp.services.ledger.keys import idempotency_key

OPERATION = "transfer"


def take(row_id: int) -> attempts.Claim | None:
    return attempts.claim(
        StripeTransfer,
        row_id,
        pending=TransferStatus.PENDING,
        operation=OPERATION,
        mirakl_id="O-1-A",
    )


def age_claim(row_id: int, by: timedelta) -> None:
    """Move the row's claim into the past, as the clock would."""
    db.session.execute(
        update(StripeTransfer).where(StripeTransfer.id == row_id).values(attempted_at=utcnow() - by)
    )
    db.session.commit()


def counts() -> tuple[int, int]:
    events = db.session.scalar(select(func.count()).select_from(OperationEvent))
    notes = db.session.scalar(select(func.count()).select_from(Notification))
    return events, notes


def test_a_claimed_row_cannot_be_claimed_again_before_the_recheck_delay(dapp):
    row_id = new_transfer().id
    recheck = attempts.recheck_after()

    first = take(row_id)
    assert first is not None and not first.is_recheck
    assert take(row_id) is None  # a second worker, at once
    age_claim(row_id, recheck - timedelta(seconds=5))
    assert take(row_id) is None  # still inside the delay

    age_claim(row_id, recheck + timedelta(seconds=1))
    second = take(row_id)
    assert second is not None and second.is_recheck  # its work was lost: look up first
    assert second.key == first.key  # and never with a new key


def test_only_a_pending_row_can_be_claimed(dapp):
    for status in (TransferStatus.CREATED, TransferStatus.ON_HOLD, TransferStatus.ABORTED):
        row = new_transfer(f"O-{status}-A", status=status)
        assert take(row.id) is None


def test_the_key_is_always_the_current_attempts(dapp):
    row_id = new_transfer().id

    first = take(row_id)
    assert first.key == idempotency_key(OPERATION, "O-1-A", 0)
    assert first.row.idempotency_key == first.key

    # Stripe refused: the attempt grows, and only then does the key change.
    attempts.record_refusal(first.row, TransferStatus.FAILED, "refused", actor="test")
    retried = db.session.get(StripeTransfer, row_id)
    assert retried.attempt == 1
    transitions.transition(retried, TransferStatus.PENDING, None, actor="test")
    db.session.commit()
    db.session.execute(
        update(StripeTransfer).where(StripeTransfer.id == row_id).values(next_attempt_at=None)
    )
    db.session.commit()

    second = take(row_id)
    assert second.key == idempotency_key(OPERATION, "O-1-A", 1) != first.key
    assert db.session.get(StripeTransfer, row_id).idempotency_key == second.key


def test_a_worker_with_a_stale_attempt_cannot_claim_with_its_old_key(dapp):
    row = new_transfer()
    # Another worker's attempt 0 was refused and the row retried: it is at attempt 1 now.
    db.session.execute(update(StripeTransfer).values(attempt=1))
    db.session.commit()
    assert row.attempt == 1  # loaded into this session
    set_committed_value(row, "attempt", 0)  # our stale view of it

    assert take(row.id) is None  # would send attempt 0's key: refused
    stored = db.session.get(StripeTransfer, row.id)
    db.session.refresh(stored)
    assert (stored.attempted_at, stored.idempotency_key) == (None, None)
    assert take(row.id).key == idempotency_key(OPERATION, "O-1-A", 1)


def test_an_unknown_outcome_keeps_the_key(dapp):
    row_id = new_transfer().id
    first = take(row_id)
    attempts.record_unknown(first.row, "timeout", actor="test")
    age_claim(row_id, attempts.recheck_after() + timedelta(seconds=1))

    again = take(row_id)
    assert again.key == first.key and again.is_recheck
    assert db.session.get(StripeTransfer, row_id).attempt == 0


def test_a_transition_from_the_wrong_status_changes_nothing(dapp):
    row = new_transfer()
    before = counts()
    # Another worker recorded the outcome after we read the row.
    db.session.execute(
        update(StripeTransfer).values(status=TransferStatus.CREATED, transfer_id="tr_winner")
    )
    db.session.commit()
    set_committed_value(row, "status", TransferStatus.PENDING)  # our stale view

    assert transitions.transition(row, TransferStatus.FAILED, "boom", actor="test") is False
    db.session.commit()
    stored = db.session.get(StripeTransfer, row.id)
    assert (stored.status, stored.transfer_id, stored.status_reason) == (
        TransferStatus.CREATED,
        "tr_winner",
        None,
    )
    assert counts() == before  # no history row, no failure notification


def test_a_forbidden_transition_raises_and_writes_nothing(dapp):
    row = new_transfer(status=TransferStatus.CREATED)
    before = counts()
    try:
        transitions.transition(row, TransferStatus.FAILED, "late failure", actor="test")
    except IllegalTransition:
        pass
    else:  # pragma: no cover - the assertion below names the failure
        raise AssertionError("CREATED → FAILED must be refused")
    db.session.commit()
    assert db.session.get(StripeTransfer, row.id).status == TransferStatus.CREATED
    assert counts() == before
