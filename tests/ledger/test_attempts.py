"""Claim, send once, record: the money job's steps in detail, with the clock stopped where a
bound is checked (``frozen``) so each limit is tested at its exact value.

``send_once`` takes the Stripe calls as two callables (``find``, ``send``); here they answer
as the gateway does (an object, ``StripeRefused``, ``StripeOutcomeUnknown``) and count their
calls. The same steps against the Stripe sandbox are in tests/integration and tests/chaos.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value

from tests.ledger.conftest import NOW, new_transfer
from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.extensions import db
from webapp.models import AccountMapping, OperationEvent, StripeTransfer, TransferStatus
from webapp.services.ledger import attempts
from webapp.services.ledger.keys import idempotency_key

ACTOR = "process-transfer"
LABEL = "transfer 1 (O-1-A)"


def take(row_id: int, **options) -> attempts.Claim | None:
    return attempts.claim(
        StripeTransfer,
        row_id,
        pending=TransferStatus.PENDING,
        operation="transfer",
        mirakl_id="O-1-A",
        **options,
    )


def set_columns(row_id: int, **values) -> None:
    db.session.execute(update(StripeTransfer).where(StripeTransfer.id == row_id).values(**values))
    db.session.commit()


def stored(row_id: int) -> StripeTransfer:
    db.session.expire_all()
    return db.session.get(StripeTransfer, row_id)


def last_event() -> OperationEvent:
    return db.session.execute(
        select(OperationEvent).order_by(OperationEvent.id.desc()).limit(1)
    ).scalar_one()


class Stripe:
    """Stands for the gateway calls of one money job: what they answer, and who was called."""

    def __init__(self, *, found=None, answer=None) -> None:
        self.found, self.answer = found, answer
        self.calls: list[str] = []

    def find(self):
        self.calls.append("find")
        return self.found

    def send(self):
        self.calls.append("send")
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def send_once(claim: attempts.Claim, stripe: Stripe) -> None:
    attempts.send_once(
        claim,
        find=stripe.find,
        send=stripe.send,
        created=TransferStatus.CREATED,
        failed=TransferStatus.FAILED,
        id_field="transfer_id",
        actor=ACTOR,
        label=LABEL,
    )


# ------------------------------------------------------------------ claim


def test_a_missing_row_is_not_claimed_and_leaves_no_transaction_open(dapp):
    assert take(12345) is None
    assert not db.session().in_transaction()


def test_a_claim_is_committed_with_its_key_and_time(dapp, frozen):
    row_id = new_transfer().id
    claim = take(row_id)
    assert not db.session().in_transaction()
    with db.engine.connect() as other:  # another worker sees the claim at once
        seen = other.execute(
            select(StripeTransfer.attempted_at, StripeTransfer.idempotency_key).where(
                StripeTransfer.id == row_id
            )
        ).one()
    assert tuple(seen) == (NOW, claim.key) == (NOW, idempotency_key("transfer", "O-1-A", 0))


def test_a_claim_loads_the_relationships_asked_for(dapp, monkeypatch):
    # As in a money job (dispatch/money_jobs.execute): what the claim read stays loaded.
    monkeypatch.setattr(db.session(), "expire_on_commit", False)
    row = new_transfer()
    row.account_mapping = AccountMapping(mirakl_shop_id=1, stripe_account_id="acct_1")
    db.session.commit()
    row_id = row.id
    db.session.expunge_all()  # nothing already loaded: the claim must load it
    claim = take(row_id, eager=("account_mapping",))
    assert "account_mapping" not in inspect(claim.row).unloaded
    assert claim.row.account_mapping.stripe_account_id == "acct_1"


def test_a_claim_is_stale_exactly_at_the_recheck_delay(dapp, frozen):
    row_id = new_transfer().id
    set_columns(row_id, attempted_at=NOW - attempts.recheck_after() + timedelta(microseconds=1))
    assert attempts.find_dispatchable(StripeTransfer, TransferStatus.PENDING) == []
    assert take(row_id) is None

    set_columns(row_id, attempted_at=NOW - attempts.recheck_after())
    assert attempts.find_dispatchable(StripeTransfer, TransferStatus.PENDING) == [row_id]
    claim = take(row_id)
    assert claim is not None and claim.is_recheck


# ------------------------------------------------------------------ find_dispatchable


def test_find_dispatchable_lists_unclaimed_pending_rows_by_id(dapp, frozen):
    recheck = attempts.recheck_after()
    fresh = new_transfer("O-1-A").id
    working = new_transfer("O-2-A").id
    lost = new_transfer("O-3-A").id
    new_transfer("O-4-A", status=TransferStatus.ON_HOLD)
    other_shop = new_transfer("O-5-A").id
    set_columns(working, attempted_at=NOW - recheck / 2)
    set_columns(lost, attempted_at=NOW - recheck * 2)
    set_columns(other_shop, mirakl_shop_id=2)
    # Move the first row out of PENDING and back: PostgreSQL stores its new version (and its
    # status index entry) after the others', so the id order below must come from ORDER BY.
    set_columns(fresh, status=TransferStatus.ON_HOLD)
    set_columns(fresh, status=TransferStatus.PENDING)

    find = attempts.find_dispatchable
    pending = TransferStatus.PENDING
    assert find(StripeTransfer, pending) == [fresh, lost, other_shop]
    assert find(StripeTransfer, pending, StripeTransfer.mirakl_shop_id == 1) == [fresh, lost]
    assert find(StripeTransfer, pending, limit=2) == [fresh, lost]


def test_mark_queued_stamps_only_the_rows_given(dapp, frozen):
    queued, other = new_transfer("O-1-A").id, new_transfer("O-2-A").id
    attempts.mark_queued(StripeTransfer, [queued])
    assert not db.session().in_transaction()
    assert (stored(queued).queued_at, stored(other).queued_at) == (NOW, None)


# ------------------------------------------------------------------ due after backoff


def test_backoff_starts_at_the_base_and_stops_at_the_cap(dapp, monkeypatch):
    monkeypatch.setitem(dapp.config, "RETRY_BACKOFF_BASE", 300)
    assert attempts.retry_backoff(0) == timedelta(minutes=5)
    assert attempts.retry_backoff(3) == timedelta(minutes=20)
    assert attempts.retry_backoff(12) == timedelta(hours=24)


def test_a_failed_row_is_due_from_its_next_attempt_time_on(dapp, frozen):
    second = timedelta(seconds=1)
    rows = {
        "pending, later": (TransferStatus.PENDING, NOW + second),
        "failed, no wait": (TransferStatus.FAILED, None),
        "failed, past": (TransferStatus.FAILED, NOW - second),
        "failed, now": (TransferStatus.FAILED, NOW),
        "failed, later": (TransferStatus.FAILED, NOW + second),
    }
    ids = {}
    for n, (name, (status, next_at)) in enumerate(rows.items()):
        row = new_transfer(f"O-{n}-A")
        set_columns(row.id, status=status, next_attempt_at=next_at)
        ids[row.id] = name
    due = db.session.execute(
        select(StripeTransfer.id).where(attempts.is_due(StripeTransfer, TransferStatus.FAILED))
    ).scalars()
    assert sorted(ids[i] for i in due) == [
        "failed, no wait",
        "failed, now",
        "failed, past",
        "pending, later",
    ]
    in_python = [name for i, name in ids.items() if attempts.is_row_due(stored(i))]
    assert in_python == ["failed, no wait", "failed, past", "failed, now"]


# ------------------------------------------------------------------ send_once and record


def test_a_first_claim_sends_without_looking_up(dapp, frozen, caplog):
    row_id = new_transfer().id
    set_columns(row_id, next_attempt_at=NOW - timedelta(minutes=1))  # a retry, now due
    stripe = Stripe(answer={"id": "tr_1"})
    caplog.set_level(logging.INFO, logger="webapp.services.ledger.attempts")

    send_once(take(row_id), stripe)

    assert stripe.calls == ["send"]
    row = stored(row_id)
    assert (row.status, row.transfer_id, row.status_reason) == ("TRANSFER_CREATED", "tr_1", None)
    assert (row.attempted_at, row.next_attempt_at, row.attempt) == (None, None, 0)
    assert (last_event().to_status, last_event().actor) == ("TRANSFER_CREATED", ACTOR)
    assert caplog.messages == [f"{LABEL} (attempt 0): created tr_1"]


def test_a_recheck_finds_what_the_lost_attempt_made_and_sends_nothing(dapp):
    row_id = new_transfer().id
    first = take(row_id)
    attempts.record_unknown(first.row, "timeout", actor=ACTOR)
    set_columns(row_id, attempted_at=first.row.attempted_at - attempts.recheck_after())
    stripe = Stripe(found={"id": "tr_lost"}, answer={"id": "tr_twice"})

    send_once(take(row_id), stripe)

    assert stripe.calls == ["find"]
    row = stored(row_id)
    # The outcome is known now: the "will be checked" reason goes with the claim.
    assert (row.status, row.transfer_id, row.status_reason) == ("TRANSFER_CREATED", "tr_lost", None)


def test_a_recheck_that_finds_nothing_sends_with_the_same_key(dapp):
    row_id = new_transfer().id
    first = take(row_id)
    set_columns(row_id, attempted_at=first.row.attempted_at - attempts.recheck_after())
    stripe = Stripe(found=None, answer={"id": "tr_1"})
    again = take(row_id)

    send_once(again, stripe)

    assert stripe.calls == ["find", "send"]
    assert again.key == first.key
    assert stored(row_id).transfer_id == "tr_1"


def test_a_refusal_fails_the_row_for_a_new_attempt_after_the_backoff(
    dapp, frozen, caplog, monkeypatch
):
    monkeypatch.setitem(dapp.config, "RETRY_BACKOFF_BASE", 300)
    row_id = new_transfer().id
    refused = StripeRefused("No such destination", http_status=400, request_id="req_9")
    caplog.set_level(logging.INFO, logger="webapp.services.ledger.attempts")

    send_once(take(row_id), Stripe(answer=refused))

    row = stored(row_id)
    assert (row.status, row.status_reason, row.attempt) == (
        "TRANSFER_FAILED",
        "No such destination",
        1,
    )
    assert (row.attempted_at, row.next_attempt_at) == (None, NOW + timedelta(minutes=5))
    assert (last_event().to_status, last_event().attempt, last_event().actor) == (
        "TRANSFER_FAILED",
        1,
        ACTOR,
    )
    assert caplog.messages == [f"{LABEL} (attempt 1): refused: No such destination (request req_9)"]


def test_a_refusal_writes_the_fields_given_with_it(dapp):
    row = take(new_transfer().id).row
    assert attempts.record_refusal(
        row, TransferStatus.FAILED, "refused", actor=ACTOR, transfer_id="tr_partial"
    )
    assert stored(row.id).transfer_id == "tr_partial"


def test_an_unknown_outcome_keeps_the_claim_and_says_it_will_be_checked(dapp, frozen):
    row_id = new_transfer().id
    stripe = Stripe(answer=StripeOutcomeUnknown("Read timed out"))

    send_once(take(row_id), stripe)

    row = stored(row_id)
    assert (row.status, row.attempted_at, row.attempt) == ("TRANSFER_PENDING", NOW, 0)
    assert row.status_reason == "Outcome unknown, will be checked: Read timed out"
    assert (last_event().reason, last_event().actor) == (row.status_reason, ACTOR)


def test_record_success_says_whether_this_worker_recorded_it(dapp):
    mine = take(new_transfer("O-1-A").id).row
    assert attempts.record_success(mine, TransferStatus.CREATED, actor=ACTOR, transfer_id="tr_1")

    stale = take(new_transfer("O-2-A").id).row
    set_columns(stale.id, status=TransferStatus.ON_HOLD)  # an operator held it meanwhile
    set_committed_value(stale, "status", TransferStatus.PENDING)
    assert not attempts.record_success(stale, TransferStatus.CREATED, actor=ACTOR, transfer_id="x")
    assert stored(stale.id).transfer_id is None
