"""The pure KYC rules of services/kyc.py (docs/onboarding.md)."""

from __future__ import annotations

import pytest

from webapp.services.onboarding.rules import (
    account_flags,
    kyc_patch,
    kyc_status,
    mail_text,
    monitor_status,
)


def account(
    currently_due=(),
    pending_verification=(),
    disabled_reason=None,
    payouts=True,
    charges=True,
    submitted=True,
):
    return {
        "id": "acct_1",
        "payouts_enabled": payouts,
        "charges_enabled": charges,
        "details_submitted": submitted,
        "requirements": {
            "currently_due": list(currently_due),
            "pending_verification": list(pending_verification),
            "disabled_reason": disabled_reason,
        },
    }


@pytest.mark.parametrize(
    ("acct", "status", "monitor"),
    [
        # 1. something due: the seller must submit it, whatever else is true
        (account(currently_due=["external_account"], disabled_reason="rejected.fraud"),
         "PENDING_SUBMISSION", "PENDING_SUBMISSION"),
        # 2. documents under review
        (account(pending_verification=["individual.id_number"], disabled_reason="x"),
         "PENDING_APPROVAL", "PENDING_APPROVAL"),
        # 3. rejected by Stripe
        (account(disabled_reason="rejected.fraud"), "REFUSED", "REFUSED"),
        (account(disabled_reason="rejected.terms_of_service"), "REFUSED", "REFUSED"),
        # 4. any other disabled reason
        (account(disabled_reason="requirements.past_due"), "PENDING_APPROVAL", "PENDING_APPROVAL"),
        (account(disabled_reason="under_review"), "PENDING_APPROVAL", "PENDING_APPROVAL"),
        # 5. both capabilities on
        (account(), "APPROVED", ""),
        # 6. nothing due, nothing disabled, but not both enabled: undetermined
        (account(payouts=False), "", ""),
        (account(charges=False), "", ""),
        ({"id": "acct_2", "requirements": None}, "", ""),
    ],
)  # fmt: skip
def test_kyc_status_rules_in_precedence_order(acct, status, monitor):
    assert kyc_status(acct) == status
    assert monitor_status(acct) == monitor


def test_account_flags_are_not_swapped():
    flags = account_flags(account(payouts=True, charges=False, disabled_reason="under_review"))
    assert flags == {
        "payout_enabled": True,
        "payin_enabled": False,
        "disabled_reason": "under_review",
        "details_submitted": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"status": "APPROVED"}, {"shop_id": 3, "kyc": {"status": "APPROVED"}}),
        (
            {"status": "REFUSED", "reason": "DISABLEMENT"},
            {"shop_id": 3, "kyc": {"status": "REFUSED", "reason": "DISABLEMENT"}},
        ),
        (
            {"status": "APPROVED", "field_code": "stripe-url", "url": "https://x/login"},
            {
                "shop_id": 3,
                "kyc": {"status": "APPROVED"},
                "shop_additional_fields": [{"code": "stripe-url", "value": "https://x/login"}],
            },
        ),
        ({"status": "", "field_code": "stripe-url", "url": None}, {"shop_id": 3}),
    ],
)  # fmt: skip
def test_kyc_patch(kwargs, expected):
    kwargs = dict(kwargs)  # the parameters are shared by every run of this test
    status = kwargs.pop("status")
    assert kyc_patch(3, status, **kwargs) == expected


def test_mail_text_lists_every_account():
    text = mail_text([(1, "acct_a", 10, "REFUSED"), (2, "acct_b", 20, "PENDING_SUBMISSION")])
    lines = text.splitlines()
    assert lines[0] == "These Stripe connected accounts need KYC action:"
    assert lines[3].split() == ["1", "acct_a", "10", "REFUSED"]
    assert lines[4].split() == ["2", "acct_b", "20", "PENDING_SUBMISSION"]
