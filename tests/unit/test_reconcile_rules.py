"""``reconcile.rules``: one row per check of each evaluation, in the docstrings' order."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from webapp.models import FindingClass
from webapp.services.reconcile import facts
from webapp.services.reconcile.rules import (
    ACTIONS,
    NOTIFIED_CLASSES,
    Finding,
    OurRow,
    StripeFact,
    evaluate_hand_reversal,
    evaluate_mirakl_refund,
    evaluate_order_refund,
    evaluate_pair,
)

NOW = datetime(2026, 12, 3, 3, 0)
ROW = OurRow(
    operation="transfer",
    id=7,
    mirakl_id="O-1-A",
    status="TRANSFER_CREATED",
    stripe_id="tr_1",
    amount=8073,
    currency="eur",
    created_at=NOW - timedelta(hours=5),
)
FACT = StripeFact(
    kind="transfer",
    id="tr_1",
    amount=8073,
    currency="eur",
    state="ok",
    created_at=NOW - timedelta(hours=5),
    mirakl_id="O-1-A",
    is_tagged=True,
)
MISSING = FindingClass.MISSING_IN_STRIPE
UNKNOWN = FindingClass.UNKNOWN_TO_US
AMOUNT = FindingClass.AMOUNT_DIFFERS
STATE = FindingClass.STATE_DIFFERS
NOT_TOLD = FindingClass.MIRAKL_NOT_TOLD


def row(**changes) -> OurRow:
    return replace(ROW, **changes)


def fact(**changes) -> StripeFact:
    return replace(FACT, **changes)


@pytest.mark.parametrize(
    ("ours", "theirs", "claimant", "expected"),
    [
        # 1. no Stripe object
        (ROW, None, None, MISSING),
        (row(stripe_id=None), None, None, MISSING),
        (row(status="TRANSFER_FAILED", stripe_id=None), None, None, None),
        (row(status="TRANSFER_PENDING"), None, None, None),
        # 2. no row owns the object
        (None, FACT, None, UNKNOWN),
        (None, fact(id="tr_2"), ROW, UNKNOWN),  # a duplicate of a CREATED row
        (None, FACT, row(status="TRANSFER_PENDING", stripe_id=None), None),  # job at work
        (None, FACT, row(status="TRANSFER_FAILED", stripe_id=None), STATE),
        (None, fact(state="failed"), row(status="TRANSFER_FAILED", stripe_id=None), None),
        (None, fact(state="canceled", kind="payout"), None, None),  # dead duplicate
        (None, fact(is_tagged=False, kind="refund", mirakl_id=None), None, UNKNOWN),  # by hand
        # 3. our row PENDING
        (row(status="TRANSFER_PENDING"), fact(amount=1), None, None),
        # 4. amount or currency
        (ROW, fact(amount=8000), None, AMOUNT),
        (ROW, fact(currency="usd"), None, AMOUNT),
        (row(currency="EUR"), fact(currency="eur"), None, None),  # case does not matter
        # 5. dead in Stripe, CREATED here
        (ROW, fact(state="failed", kind="payout"), None, STATE),
        (ROW, fact(state="canceled", kind="refund"), None, STATE),
        # 6. alive in Stripe, not CREATED here
        (row(status="TRANSFER_FAILED"), FACT, None, STATE),
        (row(status="REFUND_ON_HOLD"), FACT, None, STATE),
        (row(status="PAYOUT_FAILED"), fact(state="failed"), None, None),
        # agreement
        (ROW, FACT, None, None),
    ],
)
def test_evaluate_pair(ours, theirs, claimant, expected):
    finding = evaluate_pair(ours, theirs, claimant)
    assert (finding.finding_class if finding else None) == expected


def test_findings_carry_both_sides():
    finding = evaluate_pair(ROW, fact(amount=8000, currency="usd"))
    assert (finding.operation, finding.operation_id, finding.mirakl_id, finding.stripe_id) == (
        "transfer",
        7,
        "O-1-A",
        "tr_1",
    )
    assert (finding.our_amount, finding.their_amount) == (8073, 8000)
    assert (finding.currency, finding.their_currency) == ("eur", "usd")
    assert finding.subject_at == ROW.created_at


def test_a_duplicate_names_the_row_it_duplicates():
    finding = evaluate_pair(None, fact(id="tr_2", created_at=NOW), ROW)
    assert (finding.finding_class, finding.operation_id, finding.stripe_id) == (UNKNOWN, 7, "tr_2")
    assert "duplicate: row #7 holds tr_1" in finding.detail
    assert finding.subject_at == NOW  # when the duplicate was made


@pytest.mark.parametrize(
    ("transfer", "expected"),
    [(ROW, STATE), (row(status="TRANSFER_ABORTED"), None)],
)
def test_evaluate_hand_reversal(transfer, expected):
    reversal = fact(kind="reversal", id="trr_1", amount=500, is_tagged=False, mirakl_id=None)
    finding = evaluate_hand_reversal(transfer, reversal)
    assert (finding.finding_class if finding else None) == expected
    if finding:
        assert (finding.stripe_id, finding.their_amount, finding.operation_id) == ("trr_1", 500, 7)


REFUND = OurRow(
    operation="refund",
    id=3,
    mirakl_id="1100",
    status="REFUND_CREATED",
    stripe_id="re_1",
    amount=1234,
    currency="eur",
    created_at=NOW - timedelta(days=1),
    modified_at=NOW - timedelta(days=1),
)


@pytest.mark.parametrize(
    ("refund", "waiting", "expected"),
    [
        # 1. not waiting, or never refunded in Stripe
        (REFUND, False, None),
        (replace(REFUND, stripe_id=None, status="REFUND_PENDING"), True, None),
        # 2. a refund job between the Stripe refund and PA02
        (
            replace(REFUND, status="REFUND_PENDING", modified_at=NOW - timedelta(minutes=5)),
            True,
            None,
        ),
        # 3. not told
        (REFUND, True, NOT_TOLD),
        (replace(REFUND, status="REFUND_PENDING"), True, NOT_TOLD),  # stuck for a day
        (replace(REFUND, status="REFUND_FAILED"), True, NOT_TOLD),
    ],
)
def test_evaluate_mirakl_refund(refund, waiting, expected):
    finding = evaluate_mirakl_refund(refund, is_waiting_in_mirakl=waiting, now=NOW)
    assert (finding.finding_class if finding else None) == expected


@pytest.mark.parametrize(
    ("transfer", "state", "has_reversal", "expected"),
    [
        (ROW, "REFUNDED", False, STATE),
        (ROW, "OK", False, STATE),  # a paid service refund
        (ROW, "REFUNDED", True, None),
        (ROW, "WAITING_REFUND_PAYMENT", False, None),  # not paid yet: process-refund's work
        (row(status="TRANSFER_ABORTED"), "REFUNDED", False, None),
    ],
)
def test_evaluate_order_refund(transfer, state, has_reversal, expected):
    finding = evaluate_order_refund(transfer, "1100", state, has_reversal_row=has_reversal)
    assert (finding.finding_class if finding else None) == expected
    if finding:
        assert (finding.mirakl_id, finding.operation_id) == ("1100", 7)


def test_keys_name_one_disagreement():
    one = evaluate_order_refund(ROW, "1100", "REFUNDED", has_reversal_row=False)
    two = evaluate_order_refund(ROW, "1101", "REFUNDED", has_reversal_row=False)
    assert one.key != two.key
    assert evaluate_pair(ROW, None).key == evaluate_pair(ROW, None).key
    assert len(Finding(UNKNOWN, "x", NOW, "", mirakl_id="m" * 400).key) == 255


def test_every_class_says_what_to_do_and_only_two_are_notified():
    assert set(ACTIONS) == set(FindingClass)
    assert NOTIFIED_CLASSES == {UNKNOWN, AMOUNT}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"id": "tr_1", "amount": 5, "currency": "eur", "created": 0, "metadata": {}}, False),
        ({"id": "tr_1", "amount": 5, "metadata": {"miraklId": "O-1"}}, True),
        ({"id": "tr_1", "amount": 5, "metadata": {"pluginName": "MiraklConnector"}}, True),
        ({"id": "tr_1", "amount": 5, "metadata": None}, False),
    ],
)
def test_transfer_facts_know_our_metadata(obj, expected):
    assert facts.transfer_fact(obj).is_tagged is expected


@pytest.mark.parametrize(
    ("status", "state"),
    [("succeeded", "ok"), ("pending", "ok"), ("failed", "failed"), ("canceled", "canceled")],
)
def test_refund_and_payout_states(status, state):
    assert facts.refund_fact({"id": "re_1", "status": status}).state == state
    assert facts.payout_fact({"id": "po_1", "status": status}, "acct_1").state == state


def test_timestamps_round_trip():
    moment = datetime(2026, 12, 1, 12, 30)
    assert facts.from_timestamp(facts.to_timestamp(moment)) == moment
