"""Onboarding and KYC rules at their edges (docs/onboarding.md).

The precedence table and the account parameters live in test_kyc.py and test_onboarding.py;
this file pins what mutation testing found loose (docs/testing.md): each check of
``kyc_status`` on its own, both account flags, the token bounds, adoption of an account with
an empty shop id, and the KYC e-mail laid out character for character.
"""

from __future__ import annotations

import pytest

from webapp.services.onboarding.rules import (
    account_flags,
    is_token_well_formed,
    kyc_status,
    mail_text,
    may_adopt,
)

ENABLED = {"payouts_enabled": True, "charges_enabled": True}


@pytest.mark.parametrize(
    ("requirements", "status"),
    [
        pytest.param({"currently_due": ["external_account"]}, "PENDING_SUBMISSION", id="due"),
        pytest.param(
            {"pending_verification": ["individual.id_number"]},
            "PENDING_APPROVAL",
            id="pending verification, though payouts and charges are enabled",
        ),
        pytest.param({"disabled_reason": "rejected.fraud"}, "REFUSED", id="rejected"),
        pytest.param({"disabled_reason": "under_review"}, "PENDING_APPROVAL", id="disabled"),
        pytest.param({}, "APPROVED", id="nothing required"),
    ],
)
def test_each_kyc_check_alone_on_an_enabled_account(requirements, status):
    assert kyc_status({**ENABLED, "requirements": requirements}) == status


@pytest.mark.parametrize(
    ("account", "flags"),
    [
        pytest.param(
            {"payouts_enabled": False, "charges_enabled": True, "details_submitted": True},
            {
                "payout_enabled": False,
                "payin_enabled": True,
                "disabled_reason": None,
                "details_submitted": True,
            },
            id="charges only",
        ),
        pytest.param(
            {"requirements": {"disabled_reason": "rejected.other"}},
            {
                "payout_enabled": False,
                "payin_enabled": False,
                "disabled_reason": "rejected.other",
                "details_submitted": False,
            },
            id="nothing enabled",
        ),
    ],
)
def test_account_flags(account, flags):
    assert account_flags(account) == flags


@pytest.mark.parametrize(
    ("token", "well_formed"),
    [
        ("a" * 31, False),
        ("a" * 32, True),
        ("0123456789abcdef" * 4, True),
        ("f" * 255, True),
        ("f" * 256, False),
        ("X" * 64, False),
        ("A" * 64, False),
        ("g" * 64, False),
    ],
)
def test_token_bounds_and_alphabet(token, well_formed):
    assert is_token_well_formed(token) is well_formed


@pytest.mark.parametrize(
    ("metadata", "adoptable"),
    [
        (None, True),
        ({}, True),
        ({"miraklShopId": ""}, True),
        ({"miraklShopId": "2001"}, True),
        ({"miraklShopId": "2002"}, False),
    ],
)
def test_may_adopt_an_account_naming_no_other_shop(metadata, adoptable):
    assert may_adopt({"id": "acct_1", "metadata": metadata}, 2001) is adoptable


def test_mail_text_layout():
    text = mail_text([(1, "acct_1", 2001, "PENDING_SUBMISSION"), (12, "acct_2", 3, "REFUSED")])
    assert text == (
        "These Stripe connected accounts need KYC action:\n"
        "\n"
        "    Id  Connect account           Mirakl shop  Reason\n"
        "     1  acct_1                           2001  PENDING_SUBMISSION\n"
        "    12  acct_2                              3  REFUSED\n"
    )
