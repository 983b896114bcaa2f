"""The Stripe sandbox (``python -m sandbox.stripe``) driven by the real stripe-python client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests
import stripe

from sandbox.servers import ServerHandle, start_stripe
from sandbox.stripe.control import StripeControl
from sandbox.stripe.events import make_event, sign_payload
from tests.sandbox.webhook_receiver import WebhookReceiver

API_KEY = "sk_test_sandbox_123"
PLATFORM = "acct_platform"


def raw_post(
    stripe_sandbox: ServerHandle,
    path: str,
    data: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """A form-encoded POST with the same auth as stripe-python."""
    return requests.post(
        stripe_sandbox.url + path,
        data=data,
        headers={"Authorization": f"Bearer {API_KEY}", **(headers or {})},
        timeout=10,
    )


def new_account(stripe_client: stripe.StripeClient, **params: Any) -> stripe.Account:
    return stripe_client.v1.accounts.create(
        params={
            "type": "express",
            "country": "FR",
            "email": "shop@example.com",
            "capabilities": {"transfers": {"requested": True}},
            **params,
        }
    )


def enabled_account(stripe_client: stripe.StripeClient, stripe_control: StripeControl) -> str:
    """An onboarded account (its ``transfers`` capability active)."""
    account = new_account(stripe_client)
    stripe_control.complete_onboarding(account.id)
    return account.id


def funded_seller(stripe_client: stripe.StripeClient, stripe_control: StripeControl) -> str:
    """An onboarded account, and a platform balance (1,000.00 EUR) to transfer to it from."""
    stripe_control.set_balance("platform", "eur", 100_000)
    return enabled_account(stripe_client, stripe_control)


def available(
    stripe_client: stripe.StripeClient, account: str | None, currency: str = "eur"
) -> int:
    options: dict[str, Any] = {"stripe_account": account} if account else {}
    balance = stripe_client.v1.balance.retrieve(options=options)
    return sum(b.amount for b in balance.available if b.currency == currency)


# ------------------------------------------------------------------------ accounts


def test_platform_account(stripe_client: stripe.StripeClient) -> None:
    account = stripe_client.v1.accounts.retrieve_current()
    assert account.id == PLATFORM
    assert account.charges_enabled is True
    assert account.payouts_enabled is True


def test_create_and_retrieve_account(stripe_client: stripe.StripeClient) -> None:
    account = stripe_client.v1.accounts.create(
        params={
            "type": "express",
            "country": "FR",
            "email": "shop@example.com",
            "business_type": "company",
            "business_profile": {
                "name": "My Shop",
                "url": "https://shop.example.com",
                "support_email": "help@example.com",
                "support_phone": "+33100000000",
            },
            "settings": {
                "payouts": {"debit_negative_balances": True, "schedule": {"interval": "manual"}}
            },
            "metadata": {"mirakl_shop_id": "2001", "env": "test"},
        }
    )
    assert account.id.startswith("acct_") and account.id != PLATFORM
    assert account.object == "account"
    assert account.type == "express"
    assert account.country == "FR"
    assert account.email == "shop@example.com"
    assert account.charges_enabled is False
    assert account.payouts_enabled is False
    assert account.details_submitted is False
    assert account.business_profile.name == "My Shop"
    assert account.business_profile.support_phone == "+33100000000"
    assert account.settings.payouts.schedule.interval == "manual"
    assert account.settings.payouts.debit_negative_balances is True
    assert account.metadata.to_dict() == {"mirakl_shop_id": "2001", "env": "test"}
    assert "external_account" in account.requirements.currently_due
    assert "business_type" not in account.requirements.currently_due
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert account.requirements.eventually_due == []

    fetched = stripe_client.v1.accounts.retrieve(account.id)
    assert fetched.id == account.id
    assert fetched.metadata["mirakl_shop_id"] == "2001"
    assert fetched.business_profile.url == "https://shop.example.com"


def test_retrieve_unknown_account_is_404(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.accounts.retrieve("acct_doesnotexist")
    assert exc_info.value.http_status == 404
    assert exc_info.value.code == "resource_missing"


def test_account_creation_validates_type(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.accounts.create(params={"type": "premium"})
    assert exc_info.value.param == "type"
    assert stripe_control.objects("accounts") == []


def test_update_and_delete_account(stripe_client: stripe.StripeClient) -> None:
    account = new_account(stripe_client, metadata={"a": "1", "b": "2"})
    updated = stripe_client.v1.accounts.update(
        account.id, params={"metadata": {"b": "", "c": "3"}, "email": "new@example.com"}
    )
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    assert updated.email == "new@example.com"
    deleted = stripe_client.v1.accounts.delete(account.id)
    assert deleted.deleted is True and deleted.id == account.id
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.accounts.retrieve(account.id)


def test_account_list_paging(stripe_client: stripe.StripeClient) -> None:
    created = [new_account(stripe_client, metadata={"n": str(i)}).id for i in range(5)]
    newest_first = list(reversed(created))

    page1 = stripe_client.v1.accounts.list(params={"limit": 2})
    assert [a.id for a in page1.data] == newest_first[:2]
    assert page1.has_more is True
    page2 = stripe_client.v1.accounts.list(params={"limit": 2, "starting_after": page1.data[-1].id})
    assert [a.id for a in page2.data] == newest_first[2:4]
    assert page2.has_more is True
    page3 = stripe_client.v1.accounts.list(params={"limit": 2, "starting_after": page2.data[-1].id})
    assert [a.id for a in page3.data] == newest_first[4:]
    assert page3.has_more is False
    assert PLATFORM not in [a.id for a in stripe_client.v1.accounts.list().data]
    assert len(stripe_client.v1.accounts.list().data) == 5

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.accounts.list(params={"limit": 101})
    assert exc_info.value.param == "limit"


def test_account_link_and_hosted_onboarding(
    stripe_client: stripe.StripeClient, stripe_sandbox: ServerHandle, stripe_control: StripeControl
) -> None:
    account = new_account(stripe_client)
    link = stripe_client.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "https://connector.example.com/refresh",
            "return_url": "https://connector.example.com/return",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link"
    assert link.url.startswith(f"{stripe_sandbox.url}/_sandbox/onboarding/{account.id}/")
    assert link.expires_at == link.created + 300

    page = requests.get(link.url, timeout=10)
    assert page.status_code == 200 and account.id in page.text
    done = requests.post(link.url, allow_redirects=False, timeout=10)
    assert done.status_code == 303
    assert done.headers["Location"] == "https://connector.example.com/return"

    onboarded = stripe_client.v1.accounts.retrieve(account.id)
    assert onboarded.details_submitted is True
    assert onboarded.charges_enabled is True
    assert onboarded.payouts_enabled is True
    assert onboarded.requirements.currently_due == []
    assert onboarded.requirements.disabled_reason is None
    updated_events = stripe_control.events("account.updated")
    assert [e["account"] for e in updated_events] == [account.id]
    assert updated_events[0]["data"]["object"]["charges_enabled"] is True


def test_account_link_requires_params(stripe_client: stripe.StripeClient) -> None:
    account = new_account(stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.account_links.create(
            params={
                "account": account.id,
                "return_url": "https://connector.example.com/return",
                "type": "account_onboarding",
            }
        )
    assert exc_info.value.http_status == 400
    assert exc_info.value.param == "refresh_url"
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.account_links.create(
            params={
                "account": "acct_unknown",
                "refresh_url": "https://connector.example.com/refresh",
                "return_url": "https://connector.example.com/return",
                "type": "account_onboarding",
            }
        )
    assert exc_info.value.param == "account"


def test_login_link_only_for_express(
    stripe_client: stripe.StripeClient, stripe_sandbox: ServerHandle
) -> None:
    express = new_account(stripe_client)
    link = stripe_client.v1.accounts.login_links.create(express.id)
    assert link.object == "login_link"
    assert link.url.startswith(f"{stripe_sandbox.url}/_sandbox/express/{express.id}/")
    assert requests.get(link.url, timeout=10).status_code == 200

    custom = new_account(stripe_client, type="custom")
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.accounts.login_links.create(custom.id)
    assert exc_info.value.http_status == 400
    assert "Express" in str(exc_info.value.user_message)


# ----------------------------------------------------------------------- transfers


def test_transfer_with_source_transaction(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = enabled_account(stripe_client, stripe_control)
    charge = stripe_control.create_charge(amount=1000, currency="eur")
    assert charge["id"].startswith("ch_") and charge["status"] == "succeeded"

    transfer = stripe_client.v1.transfers.create(
        params={
            "amount": 600,
            "currency": "eur",
            "destination": seller,
            "source_transaction": charge["id"],
            "transfer_group": "order-1",
            "metadata": {"mirakl_order_id": "order-1"},
        }
    )
    assert transfer.id.startswith("tr_")
    assert transfer.object == "transfer"
    assert transfer.amount == 600
    assert transfer.amount_reversed == 0
    assert transfer.currency == "eur"
    assert transfer.destination == seller
    assert transfer.source_transaction == charge["id"]
    assert transfer.transfer_group == "order-1"
    assert transfer.metadata["mirakl_order_id"] == "order-1"
    assert transfer.reversed is False
    assert transfer.reversals.data == []
    assert transfer.destination_payment.startswith("py_")
    assert available(stripe_client, seller) == 600

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.create(
            params={
                "amount": 500,
                "currency": "eur",
                "destination": seller,
                "source_transaction": charge["id"],
            }
        )
    assert exc_info.value.http_status == 400
    assert exc_info.value.param == "amount"

    rest = stripe_client.v1.transfers.create(
        params={
            "amount": 400,
            "currency": "eur",
            "destination": seller,
            "source_transaction": charge["id"],
        }
    )
    assert rest.amount == 400
    assert [t["id"] for t in stripe_control.objects("transfers")] == [transfer.id, rest.id]
    assert available(stripe_client, seller) == 1000
    assert stripe_client.v1.transfers.retrieve(transfer.id).metadata["mirakl_order_id"] == "order-1"


def test_transfer_source_transaction_must_exist_and_succeed(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = enabled_account(stripe_client, stripe_control)
    failed = stripe_control.create_charge(amount=1000, status="failed")
    for source in ("ch_unknown", failed["id"]):
        with pytest.raises(stripe.InvalidRequestError) as exc_info:
            stripe_client.v1.transfers.create(
                params={
                    "amount": 100,
                    "currency": "eur",
                    "destination": seller,
                    "source_transaction": source,
                }
            )
        assert exc_info.value.param == "source_transaction"
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.create(
            params={"amount": 100, "currency": "eur", "destination": "acct_nobody"}
        )
    assert exc_info.value.param == "destination"
    assert stripe_control.objects("transfers") == []


def test_transfer_listing_by_group_and_destination(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller_a = funded_seller(stripe_client, stripe_control)
    seller_b = enabled_account(stripe_client, stripe_control)

    def transfer(dest: str, group: str, amount: int) -> str:
        params = {"amount": amount, "currency": "eur", "destination": dest, "transfer_group": group}
        return stripe_client.v1.transfers.create(params=params).id

    t1 = transfer(seller_a, "G1", 100)
    t2 = transfer(seller_b, "G1", 200)
    t3 = transfer(seller_a, "G2", 300)

    group = stripe_client.v1.transfers.list(params={"transfer_group": "G1"})
    assert [t.id for t in group.data] == [t2, t1]
    assert group.has_more is False
    by_dest = stripe_client.v1.transfers.list(params={"destination": seller_a})
    assert [t.id for t in by_dest.data] == [t3, t1]
    page = stripe_client.v1.transfers.list(params={"limit": 2})
    assert [t.id for t in page.data] == [t3, t2] and page.has_more is True
    nxt = stripe_client.v1.transfers.list(params={"limit": 2, "starting_after": t2})
    assert [t.id for t in nxt.data] == [t1] and nxt.has_more is False
    recent = stripe_client.v1.transfers.list(params={"created": {"gte": int(time.time()) - 60}})
    assert len(recent.data) == 3
    assert (
        stripe_client.v1.transfers.list(params={"created": {"gte": int(time.time()) + 60}}).data
        == []
    )


def test_connected_to_platform_transfer_needs_balance(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = enabled_account(stripe_client, stripe_control)
    stripe_control.set_balance("platform", "eur", 10_000)
    options = {"stripe_account": seller, "idempotency_key": "debit-1"}
    params = {"amount": 700, "currency": "eur", "destination": PLATFORM}

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.create(params=params, options=options)
    assert exc_info.value.code == "balance_insufficient"
    assert "insufficient funds" in str(exc_info.value.user_message)

    stripe_control.set_balance(seller, "eur", 1000)
    transfer = stripe_client.v1.transfers.create(params=params, options={"stripe_account": seller})
    assert transfer.destination == PLATFORM and transfer.amount == 700
    assert available(stripe_client, seller) == 300
    assert available(stripe_client, None) == 10_700

    scoped = stripe_client.v1.transfers.list(options={"stripe_account": seller})
    assert [t.id for t in scoped.data] == [transfer.id]
    assert stripe_client.v1.transfers.list().data == []
    assert (
        stripe_client.v1.transfers.retrieve(transfer.id, options={"stripe_account": seller}).id
        == transfer.id
    )
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.retrieve(transfer.id)
    assert exc_info.value.http_status == 404


def test_unknown_stripe_account_header_is_refused(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.PermissionError) as exc_info:
        stripe_client.v1.balance.retrieve(options={"stripe_account": "acct_notconnected"})
    assert exc_info.value.http_status == 403
    assert exc_info.value.json_body["error"]["code"] == "account_invalid"


def test_transfer_reversals_bounded_by_remaining(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    transfer = stripe_client.v1.transfers.create(
        params={"amount": 1000, "currency": "eur", "destination": seller}
    )
    first = stripe_client.v1.transfers.reversals.create(
        transfer.id, params={"amount": 400, "metadata": {"reason": "refund-1"}}
    )
    assert first.id.startswith("trr_")
    assert first.object == "transfer_reversal"
    assert first.amount == 400 and first.transfer == transfer.id
    assert first.metadata["reason"] == "refund-1"
    after_first = stripe_client.v1.transfers.retrieve(transfer.id)
    assert after_first.amount_reversed == 400 and after_first.reversed is False
    assert available(stripe_client, seller) == 600

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 700})
    assert exc_info.value.http_status == 400
    assert "greater than the unreversed amount (600)" in str(exc_info.value.user_message)

    rest = stripe_client.v1.transfers.reversals.create(transfer.id)
    assert rest.amount == 600
    done = stripe_client.v1.transfers.retrieve(transfer.id)
    assert done.amount_reversed == 1000 and done.reversed is True
    assert [r.id for r in done.reversals.data] == [rest.id, first.id]
    listed = stripe_client.v1.transfers.reversals.list(transfer.id)
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert available(stripe_client, seller) == 0
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})
    assert len(stripe_control.objects("reversals")) == 2


# ------------------------------------------------------------------------- payouts


def test_payouts_scoped_and_checked(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = new_account(stripe_client).id
    options = {"stripe_account": seller}
    params = {"amount": 3000, "currency": "eur", "metadata": {"cycle": "2024-01"}}

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.payouts.create(params=params, options=options)
    assert exc_info.value.code == "payouts_not_allowed"

    stripe_control.set_account(seller, payouts_enabled=True)
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.payouts.create(params=params, options=options)
    assert exc_info.value.code == "balance_insufficient"

    stripe_control.set_balance(seller, "eur", 5000)
    payout = stripe_client.v1.payouts.create(params=params, options=options)
    assert payout.id.startswith("po_")
    assert payout.object == "payout"
    assert payout.status == "pending"
    assert payout.amount == 3000 and payout.currency == "eur"
    assert payout.metadata["cycle"] == "2024-01"
    assert payout.failure_code is None
    assert payout.arrival_date > payout.created
    assert available(stripe_client, seller) == 2000

    assert [p.id for p in stripe_client.v1.payouts.list(options=options).data] == [payout.id]
    assert stripe_client.v1.payouts.list().data == []
    assert stripe_client.v1.payouts.retrieve(payout.id, options=options).status == "pending"
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.payouts.retrieve(payout.id)
    assert exc_info.value.http_status == 404

    event = stripe_control.fail_payout(payout.id, "account_closed", "The bank account is closed.")
    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["type"] == "payout.failed"
    assert event["account"] == seller
    assert event["data"]["object"]["id"] == payout.id
    assert event["data"]["object"]["status"] == "failed"
    assert event["data"]["object"]["failure_code"] == "account_closed"
    failed = stripe_client.v1.payouts.retrieve(payout.id, options=options)
    assert failed.status == "failed"
    assert failed.failure_message == "The bank account is closed."
    assert available(stripe_client, seller) == 5000
    assert [p["sandbox_scope"] for p in stripe_control.objects("payouts")] == [seller]


# ---------------------------------------------------- charges, intents and refunds


def test_payment_intent_partial_capture(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    charge = stripe_control.create_charge(
        amount=1000,
        captured=False,
        with_payment_intent=True,
        payment_intent_metadata={"mirakl_order": "O-1"},
    )
    assert charge["captured"] is False
    intent = stripe_client.v1.payment_intents.retrieve(charge["payment_intent"])
    assert intent.status == "requires_capture"
    assert intent.amount == 1000 and intent.amount_capturable == 1000
    assert intent.amount_received == 0
    assert intent.currency == "eur"
    assert intent.latest_charge == charge["id"]
    assert intent.charges.data[0].id == charge["id"]
    assert intent.metadata["mirakl_order"] == "O-1"

    captured = stripe_client.v1.payment_intents.capture(
        intent.id, params={"amount_to_capture": 600}
    )
    assert captured.status == "succeeded"
    assert captured.amount_received == 600
    assert captured.amount_capturable == 0
    after = stripe_client.v1.charges.retrieve(charge["id"])
    assert after.captured is True
    assert after.amount_captured == 600
    assert after.amount_refunded == 400
    assert after.refunded is False
    assert after.paid is True
    assert after.payment_intent == intent.id

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.payment_intents.capture(intent.id)
    assert exc_info.value.http_status == 400
    assert exc_info.value.code == "payment_intent_unexpected_state"
    assert "already been captured" in str(exc_info.value.user_message)


def test_payment_intent_cancel(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    intent = stripe_control.create_payment_intent(
        amount=2500, currency="eur", status="requires_capture"
    )
    assert intent["status"] == "requires_capture"
    canceled = stripe_client.v1.payment_intents.cancel(
        intent["id"], params={"cancellation_reason": "abandoned"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert stripe_client.v1.charges.retrieve(canceled.latest_charge).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.payment_intents.cancel(intent["id"])
    assert exc_info.value.code == "payment_intent_unexpected_state"

    succeeded = stripe_control.create_payment_intent(amount=900, currency="eur", status="succeeded")
    assert succeeded["status"] == "succeeded" and succeeded["amount_received"] == 900
    for status in ("requires_payment_method", "requires_confirmation", "processing"):
        assert stripe_control.create_payment_intent(amount=100, status=status)["status"] == status


def test_charge_capture(stripe_client: stripe.StripeClient, stripe_control: StripeControl) -> None:
    captured = stripe_control.create_charge(amount=1500, metadata={"k": "v"})
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.charges.capture(captured["id"])
    assert exc_info.value.code == "charge_already_captured"
    assert str(exc_info.value.user_message) == f"Charge {captured['id']} has already been captured."

    pending = stripe_control.create_charge(amount=1500, captured=False)
    charge = stripe_client.v1.charges.capture(pending["id"], params={"amount": 1000})
    assert charge.captured is True and charge.status == "succeeded"
    assert charge.amount == 1500 and charge.amount_captured == 1000
    assert charge.amount_refunded == 500
    assert charge.metadata.to_dict() == {}
    assert stripe_client.v1.charges.retrieve(captured["id"]).metadata["k"] == "v"


def test_refunds_partial_and_over_refund(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    charge = stripe_control.create_charge(amount=1000, with_payment_intent=True)
    first = stripe_client.v1.refunds.create(
        params={"charge": charge["id"], "amount": 300, "metadata": {"mirakl_refund": "R1"}}
    )
    assert first.id.startswith("re_")
    assert first.amount == 300 and first.charge == charge["id"]
    assert first.status == "succeeded"
    assert first.payment_intent == charge["payment_intent"]
    assert first.metadata["mirakl_refund"] == "R1"
    partially = stripe_client.v1.charges.retrieve(charge["id"])
    assert partially.amount_refunded == 300 and partially.refunded is False

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.refunds.create(params={"charge": charge["id"], "amount": 800})
    assert exc_info.value.http_status == 400
    assert exc_info.value.param == "amount"

    rest = stripe_client.v1.refunds.create(params={"payment_intent": charge["payment_intent"]})
    assert rest.amount == 700 and rest.charge == charge["id"]
    fully = stripe_client.v1.charges.retrieve(charge["id"])
    assert fully.amount_refunded == 1000 and fully.refunded is True

    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.refunds.create(params={"charge": charge["id"], "amount": 1})
    assert exc_info.value.code == "charge_already_refunded"

    listed = stripe_client.v1.refunds.list(params={"charge": charge["id"]})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert len(stripe_control.objects("refunds")) == 2


def test_py_charges_refund_and_transfer(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = enabled_account(stripe_client, stripe_control)
    charge = stripe_control.create_charge(amount=800, id_prefix="py")
    assert charge["id"].startswith("py_")
    assert stripe_client.v1.charges.retrieve(charge["id"]).amount == 800
    refund = stripe_client.v1.refunds.create(params={"charge": charge["id"], "amount": 200})
    assert refund.charge == charge["id"]
    transfer = stripe_client.v1.transfers.create(
        params={
            "amount": 800,
            "currency": "eur",
            "destination": seller,
            "source_transaction": charge["id"],
        }
    )
    assert transfer.source_transaction == charge["id"]


def test_platform_balance_follows_charges_and_transfers(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = enabled_account(stripe_client, stripe_control)
    stripe_control.create_charge(amount=5000)
    stripe_control.create_charge(amount=700, currency="usd")
    assert available(stripe_client, None) == 5000
    assert available(stripe_client, None, "usd") == 700
    stripe_client.v1.transfers.create(
        params={"amount": 1200, "currency": "eur", "destination": seller}
    )
    balance = stripe_client.v1.balance.retrieve()
    assert balance.object == "balance"
    eur = next(b for b in balance.available if b.currency == "eur")
    assert eur.amount == 3800 and eur.source_types["card"] == 3800
    seller_balance = stripe_client.v1.balance.retrieve(options={"stripe_account": seller})
    assert [(b.currency, b.amount) for b in seller_balance.available] == [("eur", 1200)]


# --------------------------------------------------------------------- idempotency


def test_idempotent_replay(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl, stripe_sandbox: ServerHandle
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    params = {
        "amount": 250,
        "currency": "eur",
        "destination": seller,
        "metadata": {"order": "O-9"},
    }
    first = stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "tr-O-9"})
    second = stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "tr-O-9"})
    assert first.id == second.id
    assert len(stripe_control.objects("transfers")) == 1
    assert available(stripe_client, seller) == 250

    journal = stripe_control.requests(path_prefix="/v1/transfers", method="POST")
    assert [(e["idempotency_key"], e["replayed"], e["status"]) for e in journal] == [
        ("tr-O-9", False, 200),
        ("tr-O-9", True, 200),
    ]
    assert journal[0]["params"]["metadata"] == {"order": "O-9"}
    assert journal[0]["params"]["amount"] == "250"

    form = {"amount": "50", "currency": "eur", "destination": seller}
    raw1 = raw_post(stripe_sandbox, "/v1/transfers", form, {"Idempotency-Key": "raw-1"})
    raw2 = raw_post(stripe_sandbox, "/v1/transfers", form, {"Idempotency-Key": "raw-1"})
    assert raw1.status_code == raw2.status_code == 200
    assert raw1.content == raw2.content
    assert raw2.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in raw1.headers

    with pytest.raises(stripe.IdempotencyError) as exc_info:
        stripe_client.v1.transfers.create(
            params={**params, "amount": 999}, options={"idempotency_key": "tr-O-9"}
        )
    assert "same parameters" in str(exc_info.value.user_message)
    assert len(stripe_control.objects("transfers")) == 2


def test_idempotency_keys_are_scoped_by_account(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    stripe_control.set_balance(seller, "eur", 1000)
    to_seller = {"amount": 100, "currency": "eur", "destination": seller}
    to_platform = {"amount": 100, "currency": "eur", "destination": PLATFORM}
    a = stripe_client.v1.transfers.create(params=to_seller, options={"idempotency_key": "same"})
    b = stripe_client.v1.transfers.create(
        params=to_platform, options={"idempotency_key": "same", "stripe_account": seller}
    )
    assert a.id != b.id
    assert len(stripe_control.objects("transfers")) == 2


def test_idempotency_saves_business_errors(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = enabled_account(stripe_client, stripe_control)
    params = {"amount": 500, "currency": "eur", "destination": PLATFORM}
    options = {"idempotency_key": "debit-x", "stripe_account": seller}
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.create(params=params, options=options)
    stripe_control.set_balance(seller, "eur", 1000)
    with pytest.raises(stripe.InvalidRequestError) as exc_info:
        stripe_client.v1.transfers.create(params=params, options=options)
    assert exc_info.value.code == "balance_insufficient"
    assert exc_info.value.headers["Idempotent-Replayed"] == "true"
    assert stripe_control.objects("transfers") == []
    # a new key executes again
    ok = stripe_client.v1.transfers.create(
        params=params, options={"idempotency_key": "debit-y", "stripe_account": seller}
    )
    assert ok.amount == 500


def test_idempotency_concurrent_request_gets_409(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl, stripe_sandbox: ServerHandle
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    stripe_control.set_faults(latency_ms=800, paths=["/v1/transfers"])
    form = {"amount": "100", "currency": "eur", "destination": seller}
    results: list[requests.Response] = []

    def send() -> None:
        results.append(raw_post(stripe_sandbox, "/v1/transfers", form, {"Idempotency-Key": "conc"}))

    threads = [threading.Thread(target=send) for _ in range(2)]
    threads[0].start()
    time.sleep(0.25)
    threads[1].start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200, 409]
    conflict = next(r for r in results if r.status_code == 409)
    assert conflict.json()["error"]["type"] == "idempotency_error"
    assert len(stripe_control.objects("transfers")) == 1


def test_idempotency_applies_to_localstripe_routes(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    charge = stripe_control.create_charge(amount=1000)
    options = {"idempotency_key": "refund-1"}
    r1 = stripe_client.v1.refunds.create(
        params={"charge": charge["id"], "amount": 100}, options=options
    )
    r2 = stripe_client.v1.refunds.create(
        params={"charge": charge["id"], "amount": 100}, options=options
    )
    assert r1.id == r2.id
    assert stripe_client.v1.charges.retrieve(charge["id"]).amount_refunded == 100


# -------------------------------------------------------------------------- faults


def test_fault_after_execution_then_retry_returns_same_object(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    params = {"amount": 300, "currency": "eur", "destination": seller, "transfer_group": "O-7"}
    options = {"idempotency_key": "transfer-O-7"}
    stripe_control.set_faults(after_rate=1, paths=["/v1/transfers"])
    with pytest.raises(stripe.APIError) as exc_info:
        stripe_client.v1.transfers.create(params=params, options=options)
    assert exc_info.value.http_status == 500
    created = stripe_control.objects("transfers")
    assert len(created) == 1

    stripe_control.clear_faults()
    retried = stripe_client.v1.transfers.create(params=params, options=options)
    assert retried.id == created[0]["id"]
    assert len(stripe_control.objects("transfers")) == 1
    assert available(stripe_client, seller) == 300
    journal = stripe_control.requests(path_prefix="/v1/transfers", method="POST")
    assert [(e["fault"], e["status"], e["replayed"]) for e in journal] == [
        ("after_error", 500, False),
        (None, 200, True),
    ]


def test_fault_after_execution_with_dropped_connection(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    params = {"amount": 300, "currency": "eur", "destination": seller}
    options = {"idempotency_key": "drop-after"}
    stripe_control.set_faults(after_rate=1, after_action="drop", max_faults=1)
    with pytest.raises(stripe.APIConnectionError):
        stripe_client.v1.transfers.create(params=params, options=options)
    assert len(stripe_control.objects("transfers")) == 1
    retried = stripe_client.v1.transfers.create(params=params, options=options)  # budget spent
    assert retried.id == stripe_control.objects("transfers")[0]["id"]


def test_faults_before_execution_do_not_execute(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    seller = funded_seller(stripe_client, stripe_control)
    params = {"amount": 100, "currency": "eur", "destination": seller}

    stripe_control.set_faults(error_rate=1, paths=["/v1/transfers"])
    with pytest.raises(stripe.APIError) as exc_info:
        stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "k1"})
    assert exc_info.value.http_status == 500
    assert stripe_client.v1.accounts.retrieve(seller).id == seller  # other paths unaffected

    stripe_control.set_faults(rate_limit_rate=1)
    with pytest.raises(stripe.RateLimitError):
        stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "k1"})

    stripe_control.set_faults(drop_rate=1)
    with pytest.raises(stripe.APIConnectionError):
        stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "k1"})

    assert stripe_control.objects("transfers") == []
    stripe_control.clear_faults()
    done = stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "k1"})
    assert done.amount == 100
    assert len(stripe_control.objects("transfers")) == 1
    faults_seen = [e["fault"] for e in stripe_control.requests(path_prefix="/v1/transfers")]
    assert faults_seen == ["error", "rate_limit", "drop", None]


def test_faults_are_seeded(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    def outcomes() -> list[bool]:
        stripe_control.set_faults(error_rate=0.5, seed=42, paths=["/v1/account"])
        result = []
        for _ in range(12):
            try:
                stripe_client.v1.accounts.retrieve_current()
                result.append(True)
            except stripe.APIError:
                result.append(False)
        return result

    first, second = outcomes(), outcomes()
    assert first == second
    assert True in first and False in first


# ------------------------------------------------------------------ misc behaviour


def test_bad_api_key_is_rejected(
    stripe_sandbox: ServerHandle, stripe_control: StripeControl
) -> None:
    bad = stripe.StripeClient(
        "not_a_secret_key", base_addresses={"api": stripe_sandbox.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.accounts.retrieve_current()


def test_reset_empties_everything(
    stripe_client: stripe.StripeClient, stripe_control: StripeControl
) -> None:
    new_account(stripe_client)
    stripe_control.create_charge(amount=100)
    stripe_control.set_faults(error_rate=1, paths=["/v1/nothing"])
    stripe_control.reset()
    assert stripe_control.objects("accounts") == []
    assert stripe_control.objects("charges") == []
    assert stripe_control.requests() == []
    assert stripe_client.v1.accounts.retrieve_current().id == PLATFORM


def test_state_file_persists_across_restarts(tmp_path: Any) -> None:
    first = start_stripe(state_dir=str(tmp_path))
    try:
        c1 = stripe.StripeClient(API_KEY, base_addresses={"api": first.url}, max_network_retries=0)
        account_id = new_account(c1).id
    finally:
        first.stop()
    second = start_stripe(state_dir=str(tmp_path))
    try:
        c2 = stripe.StripeClient(API_KEY, base_addresses={"api": second.url}, max_network_retries=0)
        assert c2.v1.accounts.retrieve(account_id).type == "express"
    finally:
        second.stop()
    assert (tmp_path / "stripe-state.pickle").exists()


# ------------------------------------------------------------------------- events


def test_make_event_and_signature_verify_with_stripe() -> None:
    payout = {"id": "po_123", "object": "payout", "status": "failed"}
    event = make_event("payout.failed", payout, account="acct_1", event_id="evt_fixed")
    assert event["id"] == "evt_fixed"
    assert event["object"] == "event"
    assert event["type"] == "payout.failed"
    assert event["account"] == "acct_1"
    assert event["data"]["object"] == payout
    assert "account" not in make_event("charge.refunded", {"id": "ch_1"})

    payload = json.dumps(event).encode()
    header = sign_payload(payload, "whsec_test", timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    now_header = sign_payload(payload, "whsec_test")
    verified = stripe.Webhook.construct_event(payload, now_header, "whsec_test")
    assert verified.id == "evt_fixed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, now_header, "whsec_other")


def test_sandbox_events_are_delivered_signed(
    stripe_client: stripe.StripeClient,
    stripe_control: StripeControl,
    webhook_receiver: WebhookReceiver,
) -> None:
    url = webhook_receiver.url + "/webhooks/stripe"
    stripe_control.add_webhook_endpoint(url, "whsec_sandbox", types=["payout.failed"])
    seller = enabled_account(stripe_client, stripe_control)
    stripe_control.set_balance(seller, "eur", 100)
    payout = stripe_client.v1.payouts.create(
        params={"amount": 100, "currency": "eur"}, options={"stripe_account": seller}
    )
    event = stripe_control.fail_payout(payout.id)
    received = webhook_receiver.wait_for(1)
    assert len(received) == 1  # account.updated was filtered out by ``types``
    _, body, signature = received[0]
    verified = stripe.Webhook.construct_event(body, signature, "whsec_sandbox")
    assert verified.id == event["id"]
    assert verified.type == "payout.failed"
    assert verified.account == seller
    assert verified.data.object.id == payout.id
    deadline = time.monotonic() + 5
    while not stripe_control.webhooks()["deliveries"] and time.monotonic() < deadline:
        time.sleep(0.05)
    deliveries = stripe_control.webhooks()["deliveries"]
    assert [(d["event"], d["status"]) for d in deliveries] == [(event["id"], 200)]
