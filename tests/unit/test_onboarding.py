"""The pure rules of services/onboarding.py (docs/onboarding.md)."""

from __future__ import annotations

import pytest

from tests.unit.factories import shop
from webapp.services.onboarding.rules import (
    account_id_in_link,
    account_params,
    is_ignored,
    is_token_well_formed,
    link_patch,
    may_adopt,
    new_token,
    refresh_url,
    should_write_link,
)

BASE_PARAMS = {
    "type": "express",
    "capabilities": {"transfers": {"requested": True}},
    "settings": {"payouts": {"debit_negative_balances": False, "schedule": {"interval": "manual"}}},
    "metadata": {"miraklShopId": "12"},
}


@pytest.mark.parametrize(
    ("the_shop", "prefill", "extra"),
    [
        (shop(), False, {}),
        (shop(is_professional=True), False, {}),
        (
            shop(),
            True,
            {
                "business_type": "individual",
                "business_profile": {
                    "name": "Shop 12",
                    "url": "https://shop12.example.com",
                    "support_email": "seller12@example.com",
                    "support_phone": "+33100000000",
                },
            },
        ),
        (
            shop(is_professional=True, web_site="", phone=""),
            True,
            {
                "business_type": "company",
                "business_profile": {"name": "Shop 12", "support_email": "seller12@example.com"},
            },
        ),
        (
            shop(name="", web_site="", phone="", email=""),
            True,
            {"business_type": "individual"},
        ),
    ],
)
def test_account_params(the_shop, prefill, extra):
    assert account_params(the_shop, prefill=prefill) == {**BASE_PARAMS, **extra}


@pytest.mark.parametrize(
    ("fields", "ignored"),
    [
        ({}, False),
        ({"stripe-ignored": "true"}, True),
        ({"stripe-ignored": "TRUE "}, True),
        ({"stripe-ignored": "false"}, False),
        ({"stripe-ignored": ""}, False),
        ({"stripe-ignored": "yes"}, False),  # the reference compares with "true" only
        ({"other-code": "true"}, False),
    ],
)
def test_is_ignored(fields, ignored):
    assert is_ignored(shop(additional_fields=fields), "stripe-ignored") is ignored


@pytest.mark.parametrize(
    ("value", "write"),
    [
        ("", True),
        ("   ", True),
        ("https://connect.stripe.com/express/oauth/authorize?client_id=ca_1", True),
        ("https://connect.stripe.com/setup/e/acct_1/abc", False),
        ("https://operator.example.com/custom-onboarding", False),
    ],
)
def test_should_write_link(value, write):
    assert should_write_link(value) is write


def test_refresh_url_and_link_patch():
    assert (
        refresh_url("https://connector.example.com", "ab" * 32)
        == "https://connector.example.com/api/public/onboarding/refresh?token=" + "ab" * 32
    )
    assert link_patch(3, "stripe-url", "https://l") == {
        "shop_id": 3,
        "shop_additional_fields": [{"code": "stripe-url", "value": "https://l"}],
    }


def test_tokens_carry_at_least_128_random_bits():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 64 and is_token_well_formed(t) for t in tokens)


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("a" * 32, True),  # the reference's 32 hex characters remain valid
        ("a" * 64, True),
        ("a" * 31, False),
        ("A" * 32, False),
        ("g" * 32, False),
        ("", False),
        ("a" * 256, False),
    ],
)
def test_token_format(token, ok):
    assert is_token_well_formed(token) is ok


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://connect.stripe.com/setup/e/acct_1AbC2dE/xyz", "acct_1AbC2dE"),
        ("https://connect.stripe.com/express/acct_9Z/abc", "acct_9Z"),
        ("https://connect.stripe.com/express/oauth/authorize?state=acct_1", None),
        ("https://mine", None),
        ("", None),
    ],
)
def test_account_id_in_link(link, expected):
    assert account_id_in_link(link) == expected


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [({}, True), ({"miraklShopId": "7"}, True), ({"miraklShopId": "8"}, False)],
)
def test_may_adopt_only_an_account_of_no_other_shop(metadata, expected):
    assert may_adopt({"id": "acct_1", "metadata": metadata}, 7) is expected
