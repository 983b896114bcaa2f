"""Payments created through the control API emit Stripe's events, signed as Stripe signs them."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from sandbox.stripe.control import StripeControl
from tests.sandbox.webhook_receiver import WebhookReceiver

SECRET = "whsec_payments"


@pytest.fixture
def received(stripe_control: StripeControl, webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    """A receiver the sandbox knows as a webhook endpoint signing with ``SECRET``."""
    stripe_control.add_webhook_endpoint(webhook_receiver.url + "/hook", SECRET)
    return webhook_receiver


def events(received: WebhookReceiver, count: int, secret: str = SECRET) -> list[stripe.Event]:
    """The deliveries once there are ``count``, each verified with the endpoint's secret."""
    verified = [
        stripe.Webhook.construct_event(body, sig, secret)
        for _, body, sig in received.wait_for(count)
    ]
    return sorted(verified, key=lambda e: e.type)


@pytest.mark.parametrize(
    ("kwargs", "types"),
    [
        ({}, ["charge.succeeded"]),
        ({"status": "failed", "captured": False}, ["charge.failed"]),
        ({"status": "pending"}, ["charge.pending"]),
        ({"with_payment_intent": True}, ["charge.succeeded", "payment_intent.succeeded"]),
        (
            {"with_payment_intent": True, "captured": False},
            ["charge.succeeded", "payment_intent.amount_capturable_updated"],
        ),
    ],
)
def test_a_charge_emits_its_events(
    stripe_control: StripeControl,
    received: WebhookReceiver,
    kwargs: dict[str, Any],
    types: list[str],
) -> None:
    charge = stripe_control.create_charge(amount=1234, metadata={"order": "O-1"}, **kwargs)
    delivered = events(received, len(types))
    assert [e.type for e in delivered] == types
    by_type = {e.type: e for e in delivered}
    charge_event = next(e for e in delivered if e.type.startswith("charge."))
    assert charge_event.data.object.id == charge["id"]
    assert charge_event.data.object.metadata["order"] == "O-1"
    assert "account" not in charge_event  # a platform event
    if "payment_intent.succeeded" in by_type:
        assert by_type["payment_intent.succeeded"].data.object.id == charge["payment_intent"]
    assert [e["type"] for e in stripe_control.events()] == [
        e for e in sorted(types, key=lambda t: not t.startswith("charge."))
    ]


@pytest.mark.parametrize(
    ("status", "types"),
    [
        ("succeeded", ["charge.succeeded", "payment_intent.succeeded"]),
        ("requires_capture", ["charge.succeeded", "payment_intent.amount_capturable_updated"]),
        ("processing", ["charge.pending", "payment_intent.processing"]),
        ("canceled", ["payment_intent.canceled"]),
    ],
)
def test_a_payment_intent_emits_its_events(
    stripe_control: StripeControl, received: WebhookReceiver, status: str, types: list[str]
) -> None:
    intent = stripe_control.create_payment_intent(amount=500, status=status)
    delivered = events(received, len(types))
    assert [e.type for e in delivered] == types
    intent_event = next(e for e in delivered if e.type.startswith("payment_intent."))
    assert intent_event.data.object.id == intent["id"]
    assert intent_event.data.object.status == status


def test_signature_is_stripes_scheme(
    stripe_control: StripeControl, received: WebhookReceiver
) -> None:
    stripe_control.create_charge(amount=100)
    (delivered,) = events(received, 1)
    _, body, signature = received.received[0]
    timestamp, v1 = signature.split(",")
    assert timestamp.startswith("t=") and abs(int(timestamp[2:]) - time.time()) < 60
    assert v1.startswith("v1=") and len(v1) == 3 + 64
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_other")


def test_events_reach_endpoints_created_through_the_api(
    stripe_client: stripe.StripeClient,
    stripe_control: StripeControl,
    webhook_receiver: WebhookReceiver,
) -> None:
    endpoint = stripe_client.v1.webhook_endpoints.create(
        params={
            "url": webhook_receiver.url + "/operator",
            "enabled_events": ["charge.succeeded"],
        }
    )
    charge = stripe_control.create_charge(amount=700, with_payment_intent=True)
    delivered = events(webhook_receiver, 1, endpoint.secret)
    time.sleep(0.2)  # payment_intent.succeeded is not among enabled_events: never sent
    assert len(webhook_receiver.received) == 1
    _, body, signature = webhook_receiver.received[0]
    verified = stripe.Webhook.construct_event(body, signature, endpoint.secret)
    assert (verified.type, verified.data.object.id) == ("charge.succeeded", charge["id"])
    assert [e.type for e in delivered] == ["charge.succeeded"]
