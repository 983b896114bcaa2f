"""Pure assembly of the order timeline: what was searched, and the story in time order."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace as Row

import pytest

from webapp.services.timeline.rules import Facts, assemble, kyc_summary, parse_query

T0 = datetime(2026, 12, 1, 10, 0)


@pytest.mark.parametrize(
    "raw, kind, prefix",
    [
        ("ch_3Nv", "stripe", "ch_"), ("pi_3Nv", "stripe", "pi_"), ("py_1", "stripe", "py_"),
        ("tr_1", "stripe", "tr_"), ("trr_1", "stripe", "trr_"), ("re_1", "stripe", "re_"),
        ("po_1", "stripe", "po_"), ("acct_1", "stripe", "acct_"), ("93117", "number", ""),
        ("1234-A", "text", ""), ("  1234-A  ", "text", ""), ("tr_", "text", ""),
    ],
)  # fmt: skip
def test_parse_query(raw, kind, prefix):
    query = parse_query(raw)
    assert (query.kind, query.prefix, query.value) == (kind, prefix, raw.strip())


def test_an_empty_search_is_none():
    assert parse_query("   ") is None


def event(op, op_id, frm, to, minutes, reason=None, actor="job"):
    return Row(operation=op, operation_id=op_id, from_status=frm, to_status=to, reason=reason,
               actor=actor, created_at=T0 + timedelta(minutes=minutes))  # fmt: skip


def test_the_story_is_in_time_order_with_reasons_links_notifications_and_operators():
    payment = Row(
        id=1,
        stripe_charge_id="ch_1",
        mirakl_commercial_order_id="C-1",
        mirakl_debit_status="OK",
        modification_datetime=T0 + timedelta(minutes=1),
    )
    transfer = Row(
        id=5,
        type="TRANSFER_PRODUCT_ORDER",
        mirakl_id="C-1-A",
        transfer_id="tr_5",
        account_mapping=None,
    )
    reversal = Row(
        id=6, type="TRANSFER_REFUND", mirakl_id="R-7", transfer_id="trr_6", account_mapping=None
    )
    refund = Row(
        id=7,
        mirakl_refund_id="R-7",
        mirakl_order_id="C-1-A",
        stripe_refund_id="re_7",
        type="REFUND_SERVICE_ORDER",
        mirakl_validation_time=T0 + timedelta(minutes=9),
    )
    payout = Row(
        id=8,
        mirakl_invoice_id=93117,
        payout_id="po_8",
        account_mapping=Row(stripe_account_id="acct_1"),
    )
    facts = Facts(
        payments=[payment], transfers=[transfer, reversal], refunds=[refund], payouts=[payout],
        events=[
            event("payment", 1, "to_capture", "captured", 0),
            event("transfer", 5, "TRANSFER_PENDING", "TRANSFER_FAILED", 2, "Insufficient funds"),
            event("transfer", 5, "TRANSFER_FAILED", "TRANSFER_CREATED", 4),
            event("refund", 7, "REFUND_PENDING", "REFUND_CREATED", 8),
            event("transfer", 6, None, "TRANSFER_CREATED", 10),
            event("payout", 8, "PAYOUT_PENDING", "PAYOUT_CREATED", 11),
            event("transfer", 99, None, "TRANSFER_CREATED", 12),  # not in this story
        ],
        notifications=[Row(type="transfer.failed", status="sent", last_error=None,
                           payload=json.dumps({"failedReason": "Insufficient funds"}),
                           created_at=T0 + timedelta(minutes=2))],
        audits=[Row(action="retry", mirakl_id="order C-1-A", target_type="transfer",
                    reason=None, outcome="queued", actor="ops@example.com",
                    created_at=T0 + timedelta(minutes=3))],
    )  # fmt: skip
    story = [(e.kind, e.title, e.detail, e.stripe_id, e.actor) for e in assemble(facts)]
    assert story == [
        ("payment", "Payment ch_1 of order C-1", "to_capture → captured", "ch_1", "job"),
        ("mirakl", "PA01 sent for order C-1", "payment_status OK", None, ""),
        ("transfer", "Transfer for order C-1-A",
         "TRANSFER_PENDING → TRANSFER_FAILED: Insufficient funds", None, "job"),
        ("notification", "Notification transfer.failed", "sent: Insufficient funds", None, ""),
        ("operator", "retry on order C-1-A", "queued", None, "ops@example.com"),
        ("transfer", "Transfer for order C-1-A", "TRANSFER_FAILED → TRANSFER_CREATED", "tr_5",
         "job"),
        ("refund", "Refund R-7 of order C-1-A", "REFUND_PENDING → REFUND_CREATED", "re_7", "job"),
        ("mirakl", "SPA02 sent for refund R-7", "refund validated on Mirakl", None, ""),
        ("reversal", "Reversal for refund R-7", "new → TRANSFER_CREATED", "trr_6", "job"),
        ("payout", "Payout of invoice 93117", "PAYOUT_PENDING → PAYOUT_CREATED", "po_8", "job"),
    ]  # fmt: skip
    assert assemble(facts)[-1].stripe_account == "acct_1"


def test_kyc_summary_of_an_account_updated_event():
    payload = {"data": {"object": {"charges_enabled": True, "payouts_enabled": False,
               "details_submitted": True, "requirements": {
                   "disabled_reason": "requirements.past_due",
                   "currently_due": ["a", "b", "c", "d", "e", "f"]}}}}  # fmt: skip
    assert kyc_summary(json.dumps(payload)) == (
        "charges on, payouts off, details submitted, disabled_reason requirements.past_due, "
        "due: a, b, c, d, e …"
    )
    assert kyc_summary("not json") == ""
