"""The request contract checker: recorded requests against stripe-python's parameter classes."""

from __future__ import annotations

import pytest

from sandbox.stripe.control import StripeControl
from tests.contract.stripe_params import ENDPOINTS, check_request, check_requests
from webapp.errors import StripeRefused
from webapp.services.stripe.gateway import StripeGateway

TRANSFER = {
    "amount": "8472",
    "currency": "eur",
    "destination": "acct_1",
    "metadata": {"miraklId": "P-1-A", "pluginName": "stripe-mirakl-connector"},
    "source_transaction": "ch_1",
    "transfer_group": "P-1",
}


def post(path: str, **params: object) -> dict:
    return {"method": "POST", "path": path, "params": params}


def get(path: str, **params: object) -> dict:
    return {"method": "GET", "path": path, "params": params}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (post("/v1/transfers", **TRANSFER), []),
        (get("/v1/transfers", limit="100", created={"gte": "1700000000"}), []),
        (post("/v1/transfers/tr_1/reversals", amount="10", metadata={"a": "b"}), []),
        (
            post(
                "/v1/accounts",
                type="express",
                country="FR",
                capabilities={"transfers": {"requested": "true"}},
            ),
            [],
        ),
        (post("/v1/refunds", charge="ch_1", metadata=""), []),
        (
            post("/v1/transfers", **{**TRANSFER, "destinaton": "acct_1"}),
            ["unknown parameter 'destinaton'"],
        ),
        (
            post("/v1/transfers", amount="1", currency="eur"),
            ["missing required parameter 'destination'"],
        ),
        (
            post("/v1/transfers", **{**TRANSFER, "amount": "84.72"}),
            ["amount='84.72' is not an integer"],
        ),
        (
            get("/v1/transfers", created={"gtee": "1"}),
            ["unknown parameter 'created[gtee]'"],
        ),
        (
            post("/v1/accounts", type="expresso"),
            ["type='expresso' is not one of 'custom', 'express', 'standard'"],
        ),
        (
            post("/v1/accounts", capabilities={"transfers": {"requestd": "true"}}),
            ["unknown parameter 'capabilities[transfers][requestd]'"],
        ),
        (
            post("/v1/payouts", amount="1", currency="eur", metadata={"k": {"nested": "x"}}),
            ["metadata[k] must be a string, got {'nested': 'x'}"],
        ),
        (
            post("/v1/payouts", amount="1", currency="eur", metadata={"k" * 41: "x"}),
            [f"metadata key '{'k' * 41}' is over 40 characters or has brackets"],
        ),
        (
            post("/v1/payouts", amount="1", currency="eur", metadata={"k": "v" * 501}),
            ["metadata[k] is 501 characters (at most 500)"],
        ),
        (
            post(
                "/v1/payouts", amount="1", currency="eur", metadata={str(i): "v" for i in range(51)}
            ),
            ["metadata has 51 keys (at most 50)"],
        ),
        (
            post("/v1/payment_intents/pi_1/capture", amount_to_capture="1", final_capture="yes"),
            ["final_capture='yes' is not a boolean (true/false)"],
        ),
    ],
)
def test_check_request(entry: dict, expected: list[str]) -> None:
    messages = check_request(entry)
    assert [message.split("): ", 1)[1] for message in messages] == expected


def test_an_endpoint_without_parameter_class_is_a_violation() -> None:
    assert check_request({"method": "DELETE", "path": "/v1/accounts/acct_1", "params": {}}) == [
        "DELETE /v1/accounts/acct_1: no stripe.params class for this endpoint (see ENDPOINTS)"
    ]


def test_pages_outside_the_api_are_not_checked() -> None:
    assert check_requests([{"method": "GET", "path": "/onboarding/x", "params": {}}]) == []


def test_every_endpoint_names_a_real_parameter_class() -> None:
    import stripe.params

    for _method, _path, name in ENDPOINTS:
        assert isinstance(getattr(stripe.params, name), type), name


def test_a_misspelled_parameter_sent_through_the_sandbox_fails_the_check(
    stripe: StripeControl, stripe_server: str
) -> None:
    gateway = StripeGateway("sk_test_contract", api_base=stripe_server, max_network_retries=0)
    account = gateway.create_account({"type": "express", "country": "FR"}, idempotency_key="a-1")
    with pytest.raises(StripeRefused):
        gateway._call(
            "create transfer",
            "post",
            "/v1/transfers",
            {"amount": 100, "currency": "eur", "destinaton": account["id"]},
        )
    violations = check_requests(stripe.requests())
    print("\n".join(violations))  # shown with -s: the output the contract hook fails with
    assert violations == [
        "POST /v1/transfers (TransferCreateParams): unknown parameter 'destinaton'",
        "POST /v1/transfers (TransferCreateParams): missing required parameter 'destination'",
    ]
    stripe.clear_requests()  # this test's violation is on purpose: the hook must not see it
