"""The Stripe sandbox's webhook endpoints and platform account, driven by stripe-python."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from sandbox.stripe.control import StripeControl
from tests.sandbox.webhook_receiver import WebhookReceiver


def create_endpoint(stripe_client: stripe.StripeClient, **params: Any) -> stripe.WebhookEndpoint:
    return stripe_client.v1.webhook_endpoints.create(
        params={"url": "https://connector.example.com/hook", "enabled_events": ["*"], **params}
    )


# ------------------------------------------------------------------ webhook endpoints


def test_create_answers_the_secret_once(stripe_client: stripe.StripeClient) -> None:
    created = create_endpoint(
        stripe_client,
        url="https://connector.example.com/api/public/webhook/sellers",
        enabled_events=["account.updated", "payout.failed"],
        connect=True,
        description="sellers",
        metadata={"managed_by": "connector"},
    )
    assert created.id.startswith("we_")
    assert created.object == "webhook_endpoint"
    assert created.url == "https://connector.example.com/api/public/webhook/sellers"
    assert created.enabled_events == ["account.updated", "payout.failed"]
    assert created.status == "enabled"
    assert created.description == "sellers"
    assert created.metadata.to_dict() == {"managed_by": "connector"}
    assert created.secret.startswith("whsec_")
    assert created["connect"] is True

    retrieved = stripe_client.v1.webhook_endpoints.retrieve(created.id)
    assert retrieved.url == created.url
    assert retrieved.enabled_events == created.enabled_events
    assert "secret" not in retrieved
    listed = stripe_client.v1.webhook_endpoints.list()
    assert [e.id for e in listed.data] == [created.id]
    assert "secret" not in listed.data[0]


def test_list_is_newest_first_and_paginates(stripe_client: stripe.StripeClient) -> None:
    ids = [create_endpoint(stripe_client, url=f"https://h{n}.example.com/x").id for n in range(3)]
    first = stripe_client.v1.webhook_endpoints.list(params={"limit": 2})
    assert [e.id for e in first.data] == [ids[2], ids[1]]
    assert first.has_more is True
    rest = stripe_client.v1.webhook_endpoints.list(params={"limit": 2, "starting_after": ids[1]})
    assert [e.id for e in rest.data] == [ids[0]]
    assert rest.has_more is False


def test_update_events_url_and_status(stripe_client: stripe.StripeClient) -> None:
    endpoint = create_endpoint(stripe_client, enabled_events=["charge.succeeded"])
    updated = stripe_client.v1.webhook_endpoints.update(
        endpoint.id,
        params={
            "enabled_events": ["charge.succeeded", "charge.updated"],
            "url": "https://other.example.com/hook",
            "disabled": True,
        },
    )
    assert updated.enabled_events == ["charge.succeeded", "charge.updated"]
    assert updated.url == "https://other.example.com/hook"
    assert updated.status == "disabled"
    assert "secret" not in updated
    enabled = stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})
    assert enabled.status == "enabled"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"connect": True})  # type: ignore[typeddict-unknown-key]
    assert raised.value.code == "parameter_unknown"


def test_delete_then_missing(stripe_client: stripe.StripeClient) -> None:
    endpoint = create_endpoint(stripe_client)
    deleted = stripe_client.v1.webhook_endpoints.delete(endpoint.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.webhook_endpoints.retrieve(endpoint.id)
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert stripe_client.v1.webhook_endpoints.list().data == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"enabled_events": ["*"]}, "url"),
        ({"url": "ftp://example.com", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com/hook"}, "enabled_events"),
        ({"url": "https://example.com/hook", "enabled_events": [""]}, "enabled_events"),
    ],
)
def test_create_rejects_bad_parameters(
    stripe_client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.webhook_endpoints.create(params=params)  # type: ignore[arg-type]
    assert raised.value.param == param
    assert stripe_client.v1.webhook_endpoints.list().data == []


def test_control_api_shows_the_secrets(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    created = create_endpoint(stripe_client, connect=True)
    [shown] = stripe_control.webhook_endpoints()
    assert shown["id"] == created.id
    assert shown["secret"] == created.secret
    assert shown["connect"] is True
    stripe_control.reset()
    assert stripe_control.webhook_endpoints() == []


def test_events_go_to_matching_enabled_endpoints(
    stripe_client: stripe.StripeClient,
    stripe_control: StripeControl,
    webhook_receiver: WebhookReceiver,
) -> None:
    sellers = create_endpoint(
        stripe_client,
        url=webhook_receiver.url + "/sellers",
        enabled_events=["payout.failed"],
        connect=True,
    )
    create_endpoint(
        stripe_client, url=webhook_receiver.url + "/platform", enabled_events=["*"]
    )  # no Connect
    disabled = create_endpoint(
        stripe_client, url=webhook_receiver.url + "/off", enabled_events=["*"], connect=True
    )
    stripe_client.v1.webhook_endpoints.update(disabled.id, params={"disabled": True})
    seller = stripe_client.v1.accounts.create(params={"type": "express", "country": "FR"}).id
    stripe_control.complete_onboarding(seller)  # account.updated: not an enabled event of /sellers
    stripe_control.set_balance(seller, "eur", 100)
    payout = stripe_client.v1.payouts.create(
        params={"amount": 100, "currency": "eur"}, options={"stripe_account": seller}
    )
    event = stripe_control.fail_payout(payout.id)

    received = webhook_receiver.wait_for(1)
    time.sleep(0.3)  # nothing else may arrive
    assert [path for path, _, _ in webhook_receiver.received] == ["/sellers"]
    _, body, signature = received[0]
    verified = stripe.Webhook.construct_event(body, signature, sellers.secret)
    assert verified.id == event["id"]
    assert verified.account == seller


# -------------------------------------------------------------------- platform account


def test_platform_account_mode_follows_the_key(
    make_stripe_client: Callable[..., stripe.StripeClient], stripe_control: StripeControl
) -> None:
    test = make_stripe_client().v1.accounts.retrieve_current()
    live = make_stripe_client("sk_live_sandbox_123").v1.accounts.retrieve_current()
    assert test.id == live.id == "acct_platform"
    assert test.livemode is False
    assert live.livemode is True
    assert test.charges_enabled is True
    assert test.capabilities.transfers == "active"


def test_platform_without_connect(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    stripe_control.set_platform(connect=False, account={"capabilities": {"transfers": "inactive"}})
    assert stripe_client.v1.accounts.retrieve_current().capabilities.transfers == "inactive"
    for call in (
        lambda: stripe_client.v1.accounts.list(params={"limit": 1}),
        lambda: stripe_client.v1.accounts.create(params={"type": "express"}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            call()
        assert "signed up for Connect" in raised.value.user_message
    stripe_control.reset()
    assert stripe_client.v1.accounts.list(params={"limit": 1}).data == []


def test_rejected_key_answers_401(
    make_stripe_client: Callable[..., stripe.StripeClient], stripe_control: StripeControl
) -> None:
    stripe_control.set_platform(rejected_keys=["sk_test_revoked_1234"])
    with pytest.raises(stripe.AuthenticationError) as raised:
        make_stripe_client("sk_test_revoked_1234").v1.accounts.retrieve_current()
    assert raised.value.http_status == 401
    assert "revoked_1234" not in str(raised.value)
    assert make_stripe_client().v1.accounts.retrieve_current().id == "acct_platform"
