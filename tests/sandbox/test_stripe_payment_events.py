"""Payments created through the control API emit Stripe's events, signed as Stripe signs them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import stripe

from sandbox.servers import ServerHandle, start_stripe
from sandbox.stripe.control import StripeControl

SECRET = "whsec_payments"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    handle = start_stripe()
    yield handle
    handle.stop()


@pytest.fixture
def control(server: ServerHandle) -> StripeControl:
    ctl = StripeControl(server.url)
    ctl.reset()
    return ctl


@pytest.fixture
def received(control: StripeControl) -> Iterator[list[tuple[bytes, str]]]:
    """Deliveries to a webhook endpoint registered in the sandbox: (body, Stripe-Signature)."""
    bodies: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    control.add_webhook_endpoint(f"http://127.0.0.1:{receiver.server_port}/hook", SECRET)
    yield bodies
    receiver.shutdown()
    receiver.server_close()


def events(
    received: list[tuple[bytes, str]], count: int, secret: str = SECRET
) -> list[stripe.Event]:
    """The deliveries once there are ``count``, each verified with the endpoint's secret."""
    deadline = time.monotonic() + 5
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    verified = [stripe.Webhook.construct_event(body, sig, secret) for body, sig in received]
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
    control: StripeControl,
    received: list[tuple[bytes, str]],
    kwargs: dict[str, Any],
    types: list[str],
) -> None:
    charge = control.create_charge(amount=1234, metadata={"order": "O-1"}, **kwargs)
    delivered = events(received, len(types))
    assert [e.type for e in delivered] == types
    by_type = {e.type: e for e in delivered}
    charge_event = next(e for e in delivered if e.type.startswith("charge."))
    assert charge_event.data.object.id == charge["id"]
    assert charge_event.data.object.metadata["order"] == "O-1"
    assert "account" not in charge_event  # a platform event
    if "payment_intent.succeeded" in by_type:
        assert by_type["payment_intent.succeeded"].data.object.id == charge["payment_intent"]
    assert [e["type"] for e in control.events()] == [
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
    control: StripeControl, received: list[tuple[bytes, str]], status: str, types: list[str]
) -> None:
    intent = control.create_payment_intent(amount=500, status=status)
    delivered = events(received, len(types))
    assert [e.type for e in delivered] == types
    intent_event = next(e for e in delivered if e.type.startswith("payment_intent."))
    assert intent_event.data.object.id == intent["id"]
    assert intent_event.data.object.status == status


def test_signature_is_stripes_scheme(
    control: StripeControl, received: list[tuple[bytes, str]]
) -> None:
    control.create_charge(amount=100)
    (delivered,) = events(received, 1)
    body, signature = received[0]
    timestamp, v1 = signature.split(",")
    assert timestamp.startswith("t=") and abs(int(timestamp[2:]) - time.time()) < 60
    assert v1.startswith("v1=") and len(v1) == 3 + 64
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_other")


def test_events_reach_endpoints_created_through_the_api(
    control: StripeControl, server: ServerHandle
) -> None:
    bodies: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bodies.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    client = stripe.StripeClient(
        "sk_test_events",
        base_addresses={"api": server.url, "connect": server.url, "files": server.url},
        max_network_retries=0,
    )
    try:
        endpoint = client.v1.webhook_endpoints.create(
            params={
                "url": f"http://127.0.0.1:{receiver.server_port}/operator",
                "enabled_events": ["charge.succeeded"],
            }
        )
        charge = control.create_charge(amount=700, with_payment_intent=True)
        delivered = events(bodies, 1, endpoint.secret)
        time.sleep(0.2)  # payment_intent.succeeded is not among enabled_events: never sent
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert len(bodies) == 1
    verified = stripe.Webhook.construct_event(bodies[0][0], bodies[0][1], endpoint.secret)
    assert (verified.type, verified.data.object.id) == ("charge.succeeded", charge["id"])
    assert [e.type for e in delivered] == ["charge.succeeded"]
