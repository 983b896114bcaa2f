"""``connector register-webhooks`` against the Stripe sandbox: create once, update, dry run."""

from __future__ import annotations

import re

import stripe as stripe_lib
from flask import Flask

from sandbox.stripe.control import StripeControl
from webapp.jobs.cli import connector_cli

SELLERS_URL = "http://connector.test/api/public/webhook/sellers"
OPERATOR_URL = "http://connector.test/api/public/webhook/operator"


def register(app: Flask, *args: str):
    return app.test_cli_runner().invoke(connector_cli, ["register-webhooks", *args])


def sandbox_client(stripe: StripeControl) -> stripe_lib.StripeClient:
    return stripe_lib.StripeClient(
        "sk_test_connector", base_addresses={"api": stripe.base_url}, max_network_retries=0
    )


def test_twice_creates_each_endpoint_once(app: Flask, stripe: StripeControl) -> None:
    first = register(app)
    assert first.exit_code == 0, first.output
    endpoints = {e["url"]: e for e in stripe.webhook_endpoints()}
    assert set(endpoints) == {SELLERS_URL, OPERATOR_URL}
    sellers, operator = endpoints[SELLERS_URL], endpoints[OPERATOR_URL]
    assert sellers["connect"] is True
    assert sellers["enabled_events"] == ["account.updated", "payout.failed"]
    assert operator["connect"] is False
    assert operator["enabled_events"] == ["charge.succeeded", "charge.updated"]
    # Each secret is printed once, with the variable it belongs in.
    assert f"STRIPE_SELLERS_WEBHOOK_SECRET={sellers['secret']}" in first.output
    assert f"STRIPE_OPERATOR_WEBHOOK_SECRET={operator['secret']}" in first.output
    assert f"sellers: created {sellers['id']} for {SELLERS_URL}" in first.output

    stripe.clear_requests()
    second = register(app)
    assert second.exit_code == 0, second.output
    assert len(stripe.webhook_endpoints()) == 2
    assert stripe.requests(path_prefix="/v1/webhook_endpoints", method="POST") == []
    assert "whsec_" not in second.output
    assert f"sellers: up to date ({sellers['id']} at {SELLERS_URL})" in second.output
    assert f"operator: up to date ({operator['id']} at {OPERATOR_URL})" in second.output


def test_dry_run_changes_nothing(app: Flask, stripe: StripeControl) -> None:
    result = register(app, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "sellers: would create an endpoint for " + SELLERS_URL in result.output
    assert "operator: would create an endpoint for " + OPERATOR_URL in result.output
    assert stripe.webhook_endpoints() == []
    assert stripe.requests(path_prefix="/v1/webhook_endpoints", method="POST") == []


def test_updates_missing_events_and_disabled_endpoints(app: Flask, stripe: StripeControl) -> None:
    client = sandbox_client(stripe)
    sellers = client.v1.webhook_endpoints.create(
        params={"url": SELLERS_URL, "enabled_events": ["account.updated"], "connect": True}
    )
    operator = client.v1.webhook_endpoints.create(
        params={"url": OPERATOR_URL, "enabled_events": ["charge.succeeded", "charge.updated"]}
    )
    client.v1.webhook_endpoints.update(operator.id, params={"disabled": True})

    dry = register(app, "--dry-run")
    assert f"sellers: would update {sellers.id}" in dry.output
    assert "missing payout.failed" in dry.output
    assert f"operator: would update {operator.id}" in dry.output
    assert {e["id"]: e["status"] for e in stripe.webhook_endpoints()}[operator.id] == "disabled"

    result = register(app)
    assert result.exit_code == 0, result.output
    assert "whsec_" not in result.output  # nothing created, no secret to show
    after = {e["id"]: e for e in stripe.webhook_endpoints()}
    assert set(after) == {sellers.id, operator.id}
    assert after[sellers.id]["enabled_events"] == ["account.updated", "payout.failed"]
    assert after[operator.id]["status"] == "enabled"


def test_other_hosts_and_wrong_connect_are_left_alone(app: Flask, stripe: StripeControl) -> None:
    client = sandbox_client(stripe)
    staging = client.v1.webhook_endpoints.create(
        params={
            "url": "https://staging.example.com/api/public/webhook/sellers",
            "enabled_events": ["account.updated", "payout.failed"],
            "connect": True,
        }
    )
    platform_only = client.v1.webhook_endpoints.create(
        params={"url": SELLERS_URL, "enabled_events": ["*"]}
    )
    result = register(app)
    assert result.exit_code == 0, result.output
    assert f"{platform_only.id} at this URL does not receive Connect events" in result.output
    endpoints = stripe.webhook_endpoints()
    assert len(endpoints) == 4
    created = [e for e in endpoints if e["id"] not in (staging.id, platform_only.id)]
    assert {(e["url"], e["connect"]) for e in created} == {
        (SELLERS_URL, True),
        (OPERATOR_URL, False),
    }
    assert len(re.findall(r"whsec_", result.output)) == 2
    assert register(app).output.count("up to date") == 2


def test_stripe_refusal_is_one_line(app: Flask, stripe: StripeControl) -> None:
    stripe.set_platform(rejected_keys=["sk_test_connector"])
    result = register(app)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        line for line in result.output.strip().splitlines() if line.startswith("error: ")
    ]
    assert "sk_test_connector" not in result.output
