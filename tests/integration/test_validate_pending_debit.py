"""``connector validate-pending-debit`` end to end: webhook → PA01 → capture or cancel.

Charges are created in the Stripe sandbox and announced through the real operator webhook;
orders live in the Mirakl sandbox. Assertions are on our rows and on what both sandboxes
received.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from sandbox.mirakl.demo import make_product_order
from sandbox.stripe.events import make_event, sign_payload
from webapp.extensions import db
from webapp.models import JobRun, PaymentMapping
from webapp.services.clients import get_stripe

KEY = "mirakl_commercial_order_id"
PA01 = "/api/payment/debit"


# ---------------------------------------------------------------- helpers


def announce(client, charge: dict, event_type: str = "charge.succeeded") -> None:
    payload = json.dumps(make_event(event_type, charge)).encode()
    response = client.post(
        "/api/public/webhook/operator",
        data=payload,
        headers={"Stripe-Signature": sign_payload(payload, "whsec_operator")},
    )
    assert response.status_code == 200, response.text


def pay(client, stripe, amount: int = 16944, commercial_id: str = "O-1", **kwargs) -> dict:
    """An authorised payment for a commercial order, announced to the connector."""
    kwargs.setdefault("captured", False)
    currency = kwargs.pop("currency", "eur")
    charge = stripe.create_charge(
        amount=amount, currency=currency, metadata={KEY: commercial_id}, **kwargs
    )
    announce(client, charge)
    return charge


def orders(mirakl, *states: str, currency: str = "EUR") -> None:
    """Logistical orders O-1-A, O-1-B, ... of commercial order O-1, in these states."""
    mirakl.add_orders(
        [
            make_product_order(f"O-1-{chr(65 + i)}", "O-1", state=state, currency=currency)
            for i, state in enumerate(states)
        ]
    )


def run(runner) -> str:
    result = runner.invoke(args=["connector", "validate-pending-debit"])
    assert result.exit_code == 0, result.output
    return result.output


def mapping() -> PaymentMapping:
    db.session.expire_all()
    return db.session.execute(select(PaymentMapping)).scalar_one()


def pa01_bodies(mirakl) -> list[dict]:
    return [r["body"] for r in mirakl.requests(path=PA01, method="PUT")]


def stripe_writes(stripe) -> list[tuple[str, dict, str]]:
    return [
        (r["path"], r["params"], r["idempotency_key"])
        for r in stripe.requests(method="POST")
        if r["status"] == 200
    ]


def ok_entry(order_id: str, charge_id: str, amount: float = 84.72, status: str = "OK") -> dict:
    return {
        "amount": amount,
        "customer_id": "customer_basic",
        "order_id": order_id,
        "payment_status": status,
        "transaction_number": charge_id,
    }


# ---------------------------------------------------------------- PA01


def test_no_mapping_sends_nothing(runner, mirakl, stripe):
    orders(mirakl, "WAITING_DEBIT_PAYMENT")

    output = run(runner)

    assert "pending debits: 1 fetched, 1 without payment" in output
    assert pa01_bodies(mirakl) == []
    assert stripe.requests() == []


def test_fully_accepted_pa01_then_full_capture(client, runner, mirakl, stripe):
    orders(mirakl, "WAITING_DEBIT_PAYMENT", "WAITING_DEBIT_PAYMENT")
    charge = pay(client, stripe)
    stripe.clear_requests()

    output = run(runner)

    # one batched PA01 for both logistical orders, exactly the reference's body
    assert pa01_bodies(mirakl) == [
        {"orders": [ok_entry("O-1-A", charge["id"]), ok_entry("O-1-B", charge["id"])]}
    ]
    state = {o["order_id"]: o for o in mirakl.state()["orders"]}
    assert state["O-1-A"]["order_state"] == "SHIPPING"
    assert state["O-1-A"]["transaction_number"] == charge["id"]
    # both orders are now debited: the same run captures the whole authorisation
    row = mapping()
    assert (row.status, row.captured_amount, row.mirakl_debit_status) == ("captured", 16944, "OK")
    assert row.status_reason is None
    assert stripe_writes(stripe) == [
        (
            f"/v1/charges/{charge['id']}/capture",
            {"amount": "16944"},
            f"mirakl-connector:capture:{charge['id']}:0",
        )
    ]
    [stored] = [c for c in stripe.objects("charges") if c["id"] == charge["id"]]
    assert (stored["captured"], stored["amount_captured"]) == (True, 16944)
    assert "pending debits: 2 fetched, 2 OK" in output
    assert "payments to capture: 1 capture" in output
    assert "capture jobs: 1 dispatched" in output


def test_rerun_never_captures_twice(client, runner, mirakl, stripe):
    orders(mirakl, "WAITING_DEBIT_PAYMENT", "WAITING_DEBIT_PAYMENT")
    charge = pay(client, stripe, with_payment_intent=True)
    run(runner)
    mirakl.clear_requests()
    stripe.clear_requests()

    output = run(runner)

    assert pa01_bodies(mirakl) == []
    assert stripe.requests() == []
    assert "payments to capture: nothing to do" in output
    assert mapping().status == "captured"
    [intent] = [p for p in stripe.objects("payment_intents") if p["id"] == charge["payment_intent"]]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 16944)


def test_failed_payment_sends_pa01_refused(client, runner, mirakl, stripe):
    orders(mirakl, "WAITING_DEBIT_PAYMENT")
    charge = pay(client, stripe, amount=8472, status="failed")
    stripe.clear_requests()

    run(runner)

    assert pa01_bodies(mirakl) == [{"orders": [ok_entry("O-1-A", charge["id"], status="REFUSED")]}]
    assert mirakl.state()["orders"][0]["order_state"] == "CANCELED"
    row = mapping()
    assert (row.status, row.mirakl_debit_status) == ("failed", "REFUSED")
    assert row.status_reason.startswith(f"Payment {charge['id']} failed")
    assert stripe_writes(stripe) == []


def test_pa01_rejected_by_mirakl_is_on_the_mapping(client, runner, mirakl, stripe):
    orders(mirakl, "WAITING_DEBIT_PAYMENT")
    pay(client, stripe, amount=8472)
    mirakl.set_faults(paths=[PA01], sequence=[200, 400])  # PA11 answers, PA01 is refused

    output = run(runner)

    row = mapping()
    assert row.status == "to_capture"
    assert row.mirakl_debit_status is None
    assert row.status_reason.startswith("Mirakl debit of order O-1-A rejected by Mirakl: PA01")
    assert "1 rejected by Mirakl" in output
    assert stripe_writes(stripe) == []

    mirakl.clear_faults()
    run(runner)  # the debit is still pending: sent again, then captured

    row = mapping()
    assert (row.status, row.mirakl_debit_status, row.status_reason) == ("captured", "OK", None)


def test_currency_mismatch_is_not_validated(client, runner, mirakl, stripe):
    orders(mirakl, "WAITING_DEBIT_PAYMENT", currency="USD")
    charge = pay(client, stripe, amount=8472)
    stripe.clear_requests()

    output = run(runner)

    assert pa01_bodies(mirakl) == []
    row = mapping()
    assert row.status == "to_capture"
    assert row.status_reason == (
        f"Mirakl debit of order O-1-A not validated: the order is in USD but payment "
        f"{charge['id']} is in EUR"
    )
    assert "1 currency mismatch" in output
    assert stripe_writes(stripe) == []


# ---------------------------------------------------------------- capture and cancel


@pytest.mark.parametrize("with_payment_intent", [False, True])
def test_partially_refused_captures_the_accepted_part(
    client, runner, mirakl, stripe, with_payment_intent
):
    orders(mirakl, "WAITING_DEBIT_PAYMENT", "REFUSED")
    charge = pay(client, stripe, with_payment_intent=with_payment_intent)
    stripe.clear_requests()

    run(runner)

    assert pa01_bodies(mirakl) == [{"orders": [ok_entry("O-1-A", charge["id"])]}]
    row = mapping()
    assert (row.status, row.captured_amount) == ("captured", 8472)
    key = f"mirakl-connector:capture:{charge['id']}:0"
    if with_payment_intent:
        expected = (
            f"/v1/payment_intents/{charge['payment_intent']}/capture",
            {"amount_to_capture": "8472"},
            key,
        )
    else:
        expected = (f"/v1/charges/{charge['id']}/capture", {"amount": "8472"}, key)
    assert stripe_writes(stripe) == [expected]
    [stored] = [c for c in stripe.objects("charges") if c["id"] == charge["id"]]
    assert stored["amount_captured"] == 8472


@pytest.mark.parametrize("with_payment_intent", [False, True])
def test_all_refused_cancels(client, runner, mirakl, stripe, with_payment_intent):
    orders(mirakl, "REFUSED", "REFUSED")
    charge = pay(client, stripe, with_payment_intent=with_payment_intent)
    stripe.clear_requests()

    output = run(runner)

    assert pa01_bodies(mirakl) == []
    row = mapping()
    assert (row.status, row.captured_amount) == ("canceled", 0)
    assert "payments to capture: 1 cancel" in output
    key = f"mirakl-connector:cancel:{charge['id']}:0"
    [(path, params, sent_key)] = stripe_writes(stripe)
    assert sent_key == key
    if with_payment_intent:
        assert path == f"/v1/payment_intents/{charge['payment_intent']}/cancel"
        [intent] = [
            p for p in stripe.objects("payment_intents") if p["id"] == charge["payment_intent"]
        ]
        assert intent["status"] == "canceled"
    else:
        assert (path, params["charge"]) == ("/v1/refunds", charge["id"])
        assert "amount" not in params
        [stored] = [c for c in stripe.objects("charges") if c["id"] == charge["id"]]
        assert (stored["refunded"], stored["captured"]) == (True, False)


def test_operator_only_amount_is_captured(client, runner, mirakl, stripe):
    orders(mirakl, "REFUSED", "REFUSED")
    charge = pay(client, stripe, amount=20000)  # 169.44 of Mirakl orders + 30.56 of the operator
    stripe.clear_requests()

    run(runner)

    row = mapping()
    assert (row.status, row.captured_amount) == ("captured", 3056)
    assert stripe_writes(stripe) == [
        (
            f"/v1/charges/{charge['id']}/capture",
            {"amount": "3056"},
            f"mirakl-connector:capture:{charge['id']}:0",
        )
    ]


def test_waits_until_every_order_is_accepted_or_refused(client, runner, mirakl, stripe):
    orders(mirakl, "SHIPPING", "WAITING_ACCEPTANCE")
    pay(client, stripe)
    stripe.clear_requests()

    output = run(runner)

    row = mapping()
    assert (row.status, row.captured_amount) == ("to_capture", None)
    assert row.status_reason == "Order O-1-B is not ready yet, status is WAITING_ACCEPTANCE"
    assert "payments to capture: 1 wait" in output
    assert stripe.requests() == []

    mirakl.add_orders([make_product_order("O-1-B", "O-1", state="REFUSED")])  # seller refused
    run(runner)

    assert (mapping().status, mapping().captured_amount) == ("captured", 8472)


def test_unknown_commercial_order_is_skipped(client, runner, mirakl, stripe):
    pay(client, stripe, commercial_id="O-404")
    stripe.clear_requests()

    run(runner)

    row = mapping()
    assert (row.status, row.status_reason) == (
        "to_capture",
        "Commercial order O-404 not found in Mirakl",
    )
    assert stripe.requests() == []


@pytest.mark.parametrize("with_payment_intent", [False, True])
def test_already_captured_on_stripe_is_reconciled(
    client, runner, mirakl, stripe, with_payment_intent
):
    orders(mirakl, "SHIPPING", "SHIPPING")
    charge = pay(client, stripe, with_payment_intent=with_payment_intent)
    # the shop front captures by itself (reference issue #105)
    if with_payment_intent:
        get_stripe().capture_payment_intent(
            charge["payment_intent"], 16944, idempotency_key="shop-front"
        )
    else:
        get_stripe().capture_charge(charge["id"], 16944, idempotency_key="shop-front")
    stripe.clear_requests()

    run(runner)

    row = mapping()
    assert (row.status, row.captured_amount) == ("captured", 16944)
    assert (
        row.status_reason == f"Payment {charge['id']} was already captured on Stripe (169.44 EUR)"
    )
    assert stripe_writes(stripe) == []  # looked up, never sent again
    run(runner)
    assert mapping().status == "captured"


def test_unknown_charge_records_a_reason_and_the_run_continues(client, runner, mirakl, stripe):
    orders(mirakl, "SHIPPING")
    mirakl.add_orders([make_product_order("O-2-A", "O-2", state="SHIPPING")])
    missing = {"id": "ch_missing", "object": "charge", "amount": 8472, "currency": "eur"}
    announce(
        client, {**missing, "status": "succeeded", "captured": False, "metadata": {KEY: "O-1"}}
    )
    good = pay(client, stripe, amount=8472, commercial_id="O-2")
    stripe.clear_requests()

    run(runner)

    db.session.expire_all()
    rows = {r.stripe_charge_id: r for r in db.session.execute(select(PaymentMapping)).scalars()}
    missing = rows["ch_missing"]
    assert missing.status == "to_capture"
    assert missing.status_reason.startswith("Stripe refused to capture: ")
    assert missing.attempt == 1  # the next run retries with a new key
    assert rows[good["id"]].status == "captured"
    assert db.session.execute(select(JobRun.outcome)).scalar_one() == "succeeded"


def test_lost_capture_is_picked_up_and_not_sent_twice(make_app, mirakl, stripe):
    """A capture whose outcome was unknown is looked up before anything is sent again."""
    app = make_app(PENDING_RECHECK_AFTER="0")
    with app.app_context():
        client, runner = app.test_client(), app.test_cli_runner()
        orders(mirakl, "SHIPPING", "SHIPPING")
        charge = pay(client, stripe, with_payment_intent=True)
        stripe.set_faults(
            after_rate=1.0,
            after_action="drop",
            paths=["/v1/payment_intents"],
            methods=["POST"],
            max_faults=1,
        )

        run(runner)  # captured by Stripe, but the answer was lost

        row = mapping()
        assert row.status == "to_capture"
        assert row.status_reason.startswith("Outcome unknown, will be checked")
        stripe.clear_faults()
        stripe.clear_requests()

        run(runner)

        row = mapping()
        assert (row.status, row.captured_amount, row.status_reason) == ("captured", 16944, None)
        assert stripe_writes(stripe) == []
        [intent] = [
            p for p in stripe.objects("payment_intents") if p["id"] == charge["payment_intent"]
        ]
        assert intent["amount_received"] == 16944


def test_refused_capture_stays_to_capture_and_retries_with_a_new_key(
    client, runner, mirakl, stripe
):
    orders(mirakl, "SHIPPING")
    charge = stripe.create_charge(amount=5000, currency="eur", captured=False)
    # the webhook announced more than was authorised: Stripe refuses the capture
    announce(client, {**charge, "amount": 8472, "metadata": {KEY: "O-1"}})
    stripe.clear_requests()

    run(runner)

    row = mapping()
    assert (row.status, row.attempt, row.idempotency_key) == (
        "to_capture",
        1,
        f"mirakl-connector:capture:{charge['id']}:0",
    )
    assert row.status_reason == (
        "Stripe refused to capture: The amount to capture (8472) is greater than the charge "
        "amount (5000)."
    )
    run(runner)
    keys = [r["idempotency_key"] for r in stripe.requests(method="POST")]
    assert keys == [
        f"mirakl-connector:capture:{charge['id']}:0",
        f"mirakl-connector:capture:{charge['id']}:1",
    ]
    assert mapping().attempt == 2
