"""``POST /api/public/webhook/operator``: charge events create and update payment mappings."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from sandbox.stripe.events import make_event, sign_payload
from webapp.extensions import db
from webapp.models import OperationEvent, PaymentMapping, WebhookEvent

URL = "/api/public/webhook/operator"
KEY = "mirakl_commercial_order_id"


def post(client, event: dict, secret: str = "whsec_operator"):
    payload = json.dumps(event).encode()
    return client.post(
        URL, data=payload, headers={"Stripe-Signature": sign_payload(payload, secret)}
    )


def mappings() -> list[PaymentMapping]:
    db.session.expire_all()
    return list(db.session.execute(select(PaymentMapping).order_by(PaymentMapping.id)).scalars())


def test_charge_succeeded_creates_the_mapping(client, stripe):
    charge = stripe.create_charge(
        amount=16944, currency="eur", captured=False, metadata={KEY: "O-1"}
    )

    response = post(client, make_event("charge.succeeded", charge))

    assert (response.status_code, response.text) == (200, "Payment mapping created.")
    [row] = mappings()
    assert (row.stripe_charge_id, row.mirakl_commercial_order_id) == (charge["id"], "O-1")
    assert (row.status, row.stripe_amount, row.currency) == ("to_capture", 16944, "eur")
    inbox = db.session.execute(select(WebhookEvent)).scalar_one()
    assert (inbox.type, inbox.endpoint, inbox.status) == (
        "charge.succeeded",
        "operator",
        "processed",
    )


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"captured": True}, "captured"),
        ({"captured": False}, "to_capture"),
        ({"captured": False, "status": "failed"}, "failed"),
        ({"captured": False, "status": "pending"}, "to_capture"),
    ],
)
def test_mapping_status_follows_the_charge(client, stripe, kwargs, status):
    charge = stripe.create_charge(amount=1000, currency="eur", metadata={KEY: "O-2"}, **kwargs)

    assert post(client, make_event("charge.succeeded", charge)).status_code == 200

    [row] = mappings()
    assert row.status == status
    if status == "failed":
        assert row.status_reason.startswith(f"Payment {charge['id']} failed")


def test_commercial_id_from_the_payment_intent_by_id(client, stripe):
    charge = stripe.create_charge(
        amount=500, captured=False, with_payment_intent=True, payment_intent_metadata={KEY: "O-3"}
    )
    assert isinstance(charge["payment_intent"], str)
    stripe.clear_requests()

    response = post(client, make_event("charge.succeeded", charge))

    assert (response.status_code, response.text) == (200, "Payment mapping created.")
    assert mappings()[0].mirakl_commercial_order_id == "O-3"
    [retrieve] = stripe.requests(method="GET")
    assert retrieve["path"] == f"/v1/payment_intents/{charge['payment_intent']}"


def test_commercial_id_from_an_expanded_payment_intent(client, stripe):
    charge = stripe.create_charge(amount=500, captured=False)
    charge["payment_intent"] = {"id": "pi_expanded", "metadata": {KEY: "O-4"}}

    response = post(client, make_event("charge.updated", charge))

    assert (response.status_code, response.text) == (200, "Payment mapping created.")
    assert mappings()[0].mirakl_commercial_order_id == "O-4"
    assert stripe.requests(method="GET") == []


def test_no_commercial_id_is_ignored(client, stripe):
    charge = stripe.create_charge(amount=500, with_payment_intent=True)

    response = post(client, make_event("charge.succeeded", charge))

    assert (response.status_code, response.text) == (
        200,
        "Ignoring event with no Mirakl Commercial Order ID.",
    )
    assert mappings() == []
    assert db.session.execute(select(WebhookEvent.status)).scalar_one() == "ignored"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("charge", f"{KEY} is empty in Charge metadata."),
        ("payment_intent", f"{KEY} is empty in PaymentIntent."),
    ],
)
def test_empty_commercial_id_is_a_bad_request(client, stripe, where, message):
    # Stripe drops empty metadata values when they are set, so the event is built by hand.
    charge = stripe.create_charge(amount=500)
    if where == "charge":
        charge["metadata"] = {KEY: ""}
    else:
        charge["payment_intent"] = {"id": "pi_expanded", "metadata": {KEY: ""}}

    response = post(client, make_event("charge.succeeded", charge))

    assert (response.status_code, response.text) == (400, message)
    assert mappings() == []


def test_custom_metadata_key(make_app, stripe):
    app = make_app(PAYMENT_METADATA_COMMERCIAL_ORDER_ID="order_ref")
    with app.app_context():
        charge = stripe.create_charge(amount=700, captured=False, metadata={"order_ref": "O-9"})
        response = post(app.test_client(), make_event("charge.succeeded", charge))
        assert response.text == "Payment mapping created."
        assert mappings()[0].mirakl_commercial_order_id == "O-9"


def test_charge_updated_moves_the_mapping_forward(client, stripe):
    charge = stripe.create_charge(amount=900, captured=False, metadata={KEY: "O-5"})
    post(client, make_event("charge.succeeded", charge))

    response = post(client, make_event("charge.updated", {**charge, "captured": True}))

    assert (response.status_code, response.text) == (200, "Payment mapping updated.")
    [row] = mappings()
    assert (row.status, row.stripe_amount) == ("captured", 900)
    history = db.session.execute(
        select(OperationEvent.from_status, OperationEvent.to_status).order_by(OperationEvent.id)
    ).all()
    assert history == [(None, "to_capture"), ("to_capture", "captured")]


def test_late_charge_succeeded_never_undoes_a_capture(client, stripe):
    charge = stripe.create_charge(amount=900, captured=False, metadata={KEY: "O-6"})
    post(client, make_event("charge.updated", {**charge, "captured": True}))

    response = post(client, make_event("charge.succeeded", charge))

    assert (response.status_code, response.text) == (200, "Payment mapping updated.")
    assert mappings()[0].status == "captured"


def test_commercial_id_is_updated_while_uncaptured(client, stripe):
    charge = stripe.create_charge(amount=900, captured=False, metadata={KEY: "O-7"})
    post(client, make_event("charge.succeeded", charge))

    post(client, make_event("charge.updated", {**charge, "metadata": {KEY: "O-8"}}))

    assert mappings()[0].mirakl_commercial_order_id == "O-8"


def test_redelivered_event_is_processed_once(client, stripe):
    charge = stripe.create_charge(amount=900, captured=False, metadata={KEY: "O-10"})
    event = make_event("charge.succeeded", charge)

    first, second = post(client, event), post(client, event)

    assert first.text == "Payment mapping created."
    assert (second.status_code, second.text) == (200, "Event already processed.")
    assert len(mappings()) == 1


def test_wrong_secret_is_rejected(client, stripe):
    charge = stripe.create_charge(amount=900, metadata={KEY: "O-11"})

    response = post(client, make_event("charge.succeeded", charge), secret="whsec_sellers")

    assert (response.status_code, response.text) == (400, "Invalid signature.")
    assert mappings() == []


@pytest.mark.parametrize(
    "event_type",
    [
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    ],
)
def test_deprecated_payment_intent_events_answer_200(client, event_type):
    response = post(client, make_event(event_type, {"id": "pi_1", "object": "payment_intent"}))

    assert response.status_code == 200
    assert "deprecated" in response.text
    assert mappings() == []


def test_unhandled_event_type(client):
    response = post(client, make_event("customer.created", {"id": "cus_1"}))

    assert (response.status_code, response.text) == (400, "Unhandled event type")
