"""The Stripe sandbox refuses what Stripe refuses (issue 21), with Stripe's error shapes."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from sandbox.servers import ServerHandle
from sandbox.stripe.control import StripeControl

API_KEY = "sk_test_strict"
DAY = 24 * 3600


def account(stripe_client: stripe.StripeClient, *, transfers: bool = True) -> str:
    params: dict[str, Any] = {"type": "express", "country": "FR"}
    if transfers:
        params["capabilities"] = {"transfers": {"requested": True}}
    return stripe_client.v1.accounts.create(params=params).id


def onboarded(stripe_client: stripe.StripeClient, stripe_control: StripeControl) -> str:
    acct = account(stripe_client)
    stripe_control.complete_onboarding(acct)
    return acct


def refused(call: Any, **kw: Any) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as exc_info:
        call(**kw)
    return exc_info.value


def error_of(exc: stripe.StripeError) -> dict[str, Any]:
    assert exc.json_body is not None
    return exc.json_body["error"]


# ---------------------------------------------------------------- transfers


@pytest.mark.parametrize("how", ["not requested", "requested, not onboarded", "inactive"])
def test_transfer_needs_the_transfers_capability_active(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl, how: str
) -> None:
    stripe_control.set_balance("platform", "eur", 10_000)
    acct = account(stripe_client, transfers=how != "not requested")
    if how == "inactive":
        stripe_control.complete_onboarding(acct)
        stripe_control.set_account(acct, capabilities={"transfers": "inactive"})
    exc = refused(
        stripe_client.v1.transfers.create,
        params={"amount": 100, "currency": "eur", "destination": acct},
    )
    assert exc.http_status == 400
    assert error_of(exc) == {
        "type": "invalid_request_error",
        "code": "insufficient_capabilities_for_transfer",
        "param": "destination",
        "message": "Your destination account needs to have at least one of the following "
        "capabilities enabled: transfers, crypto_transfers, legacy_payments",
    }
    assert stripe_control.objects("transfers") == []
    stripe_control.complete_onboarding(acct)
    stripe_control.set_account(acct, capabilities={"transfers": "active"})
    assert (
        stripe_client.v1.transfers.create(
            params={"amount": 100, "currency": "eur", "destination": acct}
        ).amount
        == 100
    )


def test_transfer_over_the_platform_balance_needs_a_source_transaction(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = onboarded(stripe_client, stripe_control)
    charge = stripe_control.create_charge(amount=1000, currency="eur")
    stripe_control.set_balance("platform", "eur", 500)
    exc = refused(
        stripe_client.v1.transfers.create,
        params={"amount": 501, "currency": "eur", "destination": seller},
    )
    assert exc.http_status == 400
    assert error_of(exc)["type"] == "invalid_request_error"
    assert error_of(exc)["code"] == "balance_insufficient"
    assert error_of(exc)["message"].startswith("You have insufficient available funds")
    exact = stripe_client.v1.transfers.create(
        params={"amount": 500, "currency": "eur", "destination": seller}
    )
    assert exact.amount == 500
    # The charge's own funds may go on before they reach the available balance.
    funded = stripe_client.v1.transfers.create(
        params={
            "amount": 1000,
            "currency": "eur",
            "destination": seller,
            "source_transaction": charge["id"],
        }
    )
    assert funded.source_transaction == charge["id"]


@pytest.mark.parametrize(
    ("charge", "param", "fragment"),
    [
        ({"currency": "usd"}, "currency", "must match the transfer currency"),
        ({"captured": False}, "source_transaction", "has not been captured"),
        ({"status": "failed"}, "source_transaction", "only succeeded charges"),
    ],
)
def test_source_transaction_must_be_a_captured_charge_in_the_transfer_currency(
    stripe_client: stripe.StripeClient,
    stripe_control: StripeControl,
    charge: dict[str, Any],
    param: str,
    fragment: str,
) -> None:
    seller = onboarded(stripe_client, stripe_control)
    source = stripe_control.create_charge(amount=1000, **charge)["id"]
    exc = refused(
        stripe_client.v1.transfers.create,
        params={
            "amount": 100,
            "currency": "eur",
            "destination": seller,
            "source_transaction": source,
        },
    )
    assert exc.http_status == 400
    assert error_of(exc)["type"] == "invalid_request_error"
    assert error_of(exc)["param"] == param
    assert fragment in error_of(exc)["message"]
    assert stripe_control.objects("transfers") == []


def test_reversal_bounded_by_what_is_left_on_the_transfer(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = onboarded(stripe_client, stripe_control)
    stripe_control.set_balance("platform", "eur", 1000)
    transfer = stripe_client.v1.transfers.create(
        params={"amount": 1000, "currency": "eur", "destination": seller}
    )
    stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 600})
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 401})
    exc = exc_info.value
    assert exc.http_status == 400
    assert error_of(exc)["code"] == "amount_too_large"
    assert error_of(exc)["param"] == "amount"
    assert (
        stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 400}).amount
        == 400
    )


def test_payout_needs_payouts_enabled(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    acct = account(stripe_client)
    stripe_control.set_balance(acct, "eur", 1000)
    options: dict[str, Any] = {"stripe_account": acct}
    exc = refused(
        stripe_client.v1.payouts.create, params={"amount": 100, "currency": "eur"}, options=options
    )
    assert exc.http_status == 400
    assert error_of(exc)["type"] == "invalid_request_error"
    assert error_of(exc)["code"] == "payouts_not_allowed"
    stripe_control.complete_onboarding(acct)
    payout = stripe_client.v1.payouts.create(
        params={"amount": 100, "currency": "eur"}, options=options
    )
    assert payout.amount == 100


# -------------------------------------------------------------- idempotency


def transfer_with_key(
    stripe_client: stripe.StripeClient, seller: str, amount: int, key: str
) -> Any:
    return stripe_client.v1.transfers.create(
        params={"amount": amount, "currency": "eur", "destination": seller},
        options={"idempotency_key": key},
    )


def test_key_reused_with_other_parameters_is_an_idempotency_error(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = onboarded(stripe_client, stripe_control)
    stripe_control.set_balance("platform", "eur", 10_000)
    transfer_with_key(stripe_client, seller, 100, "k-1")
    exc = refused(
        transfer_with_key, stripe_client=stripe_client, seller=seller, amount=200, key="k-1"
    )
    assert isinstance(exc, stripe.IdempotencyError)
    assert exc.http_status == 400
    assert error_of(exc)["type"] == "idempotency_error"
    assert "can only be used with the same parameters" in error_of(exc)["message"]
    assert len(stripe_control.objects("transfers")) == 1


def test_keys_expire_after_24_hours_of_the_sandbox_clock(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = onboarded(stripe_client, stripe_control)
    stripe_control.set_balance("platform", "eur", 10_000)
    first = transfer_with_key(stripe_client, seller, 100, "k-day")
    stripe_control.advance_clock(DAY - 60)
    assert transfer_with_key(stripe_client, seller, 100, "k-day").id == first.id  # replayed
    stripe_control.advance_clock(60)
    again = transfer_with_key(stripe_client, seller, 100, "k-day")
    assert again.id != first.id  # pruned: a new request, a second transfer
    assert len(stripe_control.objects("transfers")) == 2
    clock = stripe_control.advance_clock(0)
    assert clock["offset"] == DAY
    stripe_control.reset()
    assert stripe_control.advance_clock(0)["offset"] == 0


def test_validation_errors_are_not_saved_but_business_errors_are(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl, stripe_sandbox: ServerHandle
) -> None:
    seller = onboarded(stripe_client, stripe_control)
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k-typo"}
    typo = requests.post(
        f"{stripe_sandbox.url}/v1/transfers",
        data={"amount": "100", "currency": "eur", "destinaton": seller},
        headers=headers,
        timeout=10,
    )
    assert typo.status_code == 400
    assert typo.json()["error"]["code"] == "parameter_unknown"
    # Execution never began: Stripe saved nothing, the key is free for the corrected request.
    stripe_control.set_balance("platform", "eur", 50)
    short = requests.post(
        f"{stripe_sandbox.url}/v1/transfers",
        data={"amount": "100", "currency": "eur", "destination": seller},
        headers=headers,
        timeout=10,
    )
    assert short.status_code == 400
    assert short.json()["error"]["code"] == "balance_insufficient"
    assert "Idempotent-Replayed" not in short.headers
    stripe_control.set_balance("platform", "eur", 1000)
    replay = requests.post(
        f"{stripe_sandbox.url}/v1/transfers",
        data={"amount": "100", "currency": "eur", "destination": seller},
        headers=headers,
        timeout=10,
    )
    # The refusal came from execution: replayed as Stripe does, funds or not.
    assert replay.status_code == 400
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == short.content
    assert stripe_control.objects("transfers") == []
