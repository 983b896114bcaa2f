"""The Stripe gateway against the Stripe sandbox over real HTTP."""

from __future__ import annotations

import json
import time

import pytest

from sandbox.stripe.events import make_event, sign_payload
from webapp.errors import (
    StripeOutcomeUnknown,
    StripeRefused,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from webapp.services.stripe.gateway import PLUGIN_NAME, StripeGateway


@pytest.fixture
def gateway(stripe, stripe_server) -> StripeGateway:
    return StripeGateway(
        "sk_test_gateway",
        api_base=stripe_server,
        plugin_version="9.9",
        max_network_retries=0,
        timeout=5,
    )


@pytest.fixture
def seller(gateway) -> str:
    account = gateway.create_account(
        {"type": "express", "metadata": {"miraklShopId": 1}}, idempotency_key="test:account:1:0"
    )
    return account["id"]


def test_a_retried_post_with_the_same_key_creates_one_object(gateway, stripe, seller):
    charge = stripe.create_charge(amount=10000, currency="eur")
    params = dict(
        amount=8073,
        currency="eur",
        destination=seller,
        metadata={"miraklId": "O-1-A"},
        source_transaction=charge["id"],
        transfer_group="O-1",
    )
    first = gateway.create_transfer(idempotency_key="k:O-1-A:0", **params)
    again = gateway.create_transfer(idempotency_key="k:O-1-A:0", **params)
    assert first["id"] == again["id"]
    transfers = stripe.objects("transfers")
    assert [t["id"] for t in transfers] == [first["id"]]
    assert transfers[0]["metadata"] == {
        "miraklId": "O-1-A",
        "pluginName": PLUGIN_NAME,
        "pluginVersion": "9.9",
    }
    assert transfers[0]["transfer_group"] == "O-1"
    sent = stripe.requests(path_prefix="/v1/transfers", method="POST")
    assert [r["idempotency_key"] for r in sent] == ["k:O-1-A:0", "k:O-1-A:0"]
    assert sent[1]["replayed"] is True


def test_same_key_with_other_parameters_is_a_definitive_refusal(gateway, seller):
    gateway.create_transfer(
        amount=100, currency="eur", destination=seller, metadata={}, idempotency_key="k:X:0"
    )
    with pytest.raises(StripeRefused) as info:
        gateway.create_transfer(
            amount=200, currency="eur", destination=seller, metadata={}, idempotency_key="k:X:0"
        )
    assert info.value.http_status == 400


def test_business_refusals_carry_stripes_code_and_message(gateway, stripe, seller):
    stripe.set_account(seller, payouts_enabled=True)
    stripe.set_balance(seller, "eur", 100)
    with pytest.raises(StripeRefused) as info:
        gateway.create_payout(
            seller, amount=5000, currency="eur", metadata={}, idempotency_key="k:po:0"
        )
    assert info.value.code == "balance_insufficient"
    assert "insufficient" in info.value.message.lower()


def test_server_errors_are_unknown_outcomes(gateway, stripe, seller):
    stripe.set_faults(error_rate=1.0, paths=["/v1/transfers"])
    with pytest.raises(StripeOutcomeUnknown) as info:
        gateway.create_transfer(
            amount=100, currency="eur", destination=seller, metadata={}, idempotency_key="k:Y:0"
        )
    assert info.value.http_status == 500
    assert stripe.objects("transfers") == []


def test_lost_answer_then_retry_with_the_same_key_gets_the_object(gateway, stripe, seller):
    stripe.set_faults(after_rate=1.0, paths=["/v1/transfers"])
    with pytest.raises(StripeOutcomeUnknown):
        gateway.create_transfer(
            amount=100, currency="eur", destination=seller, metadata={}, idempotency_key="k:Z:0"
        )
    stripe.clear_faults()
    made = gateway.create_transfer(
        amount=100, currency="eur", destination=seller, metadata={}, idempotency_key="k:Z:0"
    )
    assert [t["id"] for t in stripe.objects("transfers")] == [made["id"]]


def test_connected_account_calls_go_to_the_configured_base(gateway, stripe, seller):
    stripe.set_account(seller, payouts_enabled=True)
    stripe.set_balance(seller, "eur", 10000)
    payout = gateway.create_payout(
        seller, amount=1234, currency="eur", metadata={"invoiceId": 7}, idempotency_key="k:po:7:0"
    )
    assert payout["amount"] == 1234
    sent = stripe.requests(path_prefix="/v1/payouts", method="POST")
    assert sent[-1]["stripe_account"] == seller
    assert [p["metadata"]["invoiceId"] for p in gateway.list_payouts(seller)] == ["7"]


def test_lists_follow_pagination(gateway, stripe):
    for shop in range(105):
        gateway.create_account(
            {"type": "express", "metadata": {"miraklShopId": shop}}, idempotency_key=f"acct:{shop}"
        )
    assert len(list(gateway.list_accounts())) == 105


def test_webhook_signatures():
    event = make_event("account.updated", {"id": "acct_1", "object": "account"}, account="acct_1")
    payload = json.dumps(event).encode()
    assert (
        StripeGateway.verify_event(payload, sign_payload(payload, "whsec_a"), "whsec_a")["id"]
        == event["id"]
    )
    with pytest.raises(WebhookSignatureInvalid):
        StripeGateway.verify_event(payload, sign_payload(payload, "whsec_other"), "whsec_a")
    with pytest.raises(WebhookSignatureInvalid):
        StripeGateway.verify_event(payload, None, "whsec_a")
    stale = sign_payload(payload, "whsec_a", timestamp=int(time.time()) - 400)
    with pytest.raises(WebhookSignatureInvalid):
        StripeGateway.verify_event(payload, stale, "whsec_a")
    garbage = b"not json"
    with pytest.raises(WebhookPayloadInvalid):
        StripeGateway.verify_event(garbage, sign_payload(garbage, "whsec_a"), "whsec_a")
