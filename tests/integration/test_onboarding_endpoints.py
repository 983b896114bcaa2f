"""Onboarding over HTTP: the refresh link, the account.updated webhook and the mappings API."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from sandbox.mirakl.demo import make_shop
from sandbox.stripe.events import make_event, sign_payload
from webapp.extensions import db
from webapp.models import AccountMapping, Notification, WebhookEvent
from webapp.services.clients import get_stripe

AUTH = {"X-AUTH-TOKEN": "operator-password"}
FIELD = "stripe-url"


def onboard(runner, mirakl, *shop_ids: int) -> dict[int, AccountMapping]:
    """Shops onboarded the real way: sync-onboarding against the sandboxes."""
    mirakl.add_shops([make_shop(i) for i in shop_ids])
    result = runner.invoke(args=["connector", "sync-onboarding"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    rows = db.session.execute(select(AccountMapping)).scalars()
    return {m.mirakl_shop_id: m for m in rows}


def shop(mirakl, shop_id: int) -> dict:
    return next(s for s in mirakl.state()["shops"] if s["shop_id"] == shop_id)


def shop_field(mirakl, shop_id: int) -> str | None:
    fields = shop(mirakl, shop_id).get("shop_additional_fields") or []
    return {f["code"]: f.get("value") for f in fields}.get(FIELD)


def deliver(client, event: dict, secret: str = "whsec_sellers", path: str = "sellers"):
    payload = json.dumps(event).encode()
    url = "/api/public/webhook" + ("/" + path if path else "")
    return client.post(
        url,
        data=payload,
        headers={"Stripe-Signature": sign_payload(payload, secret)},
        content_type="application/json",
    )


def account_event(stripe, acct: str, event_id: str | None = None, **stale: object) -> dict:
    """An account.updated event; ``stale`` overrides fields of the payload (not of Stripe)."""
    obj = next(a for a in stripe.objects("accounts") if a["id"] == acct)
    return make_event("account.updated", {**obj, **stale}, account=acct, event_id=event_id)


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


# ---------------------------------------------------------------- refresh link


@pytest.mark.parametrize("query", ["", "?token=", "?token=" + "ab" * 32, "?token=zz"])
def test_refresh_with_missing_or_unknown_token_is_400(client, mirakl, stripe, query):
    response = client.get("/api/public/onboarding/refresh" + query)
    assert response.status_code == 400
    assert response.get_data(as_text=True) == "Incorrect token"


def test_refresh_before_details_are_submitted_gives_a_new_account_link(
    client, runner, mirakl, stripe
):
    mapping = onboard(runner, mirakl, 1)[1]
    old_url, token = mapping.onboarding_url, mapping.onboarding_token

    response = client.get(f"/api/public/onboarding/refresh?token={token}")

    assert response.status_code == 302
    new_url = response.headers["Location"]
    assert new_url != old_url
    assert f"/_sandbox/onboarding/{mapping.stripe_account_id}/" in new_url
    assert shop_field(mirakl, 1) == new_url
    db.session.expire_all()
    assert mapping.onboarding_token == token  # same token, as the reference
    assert mapping.onboarding_url == new_url


def test_refresh_after_details_are_submitted_gives_a_login_link(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    stripe.complete_onboarding(mapping.stripe_account_id)

    response = client.get(f"/api/public/onboarding/refresh?token={mapping.onboarding_token}")

    assert response.status_code == 302
    login = response.headers["Location"]
    assert f"/_sandbox/express/{mapping.stripe_account_id}/" in login
    assert shop_field(mirakl, 1) == login
    assert stripe.requests(path_prefix=f"/v1/accounts/{mapping.stripe_account_id}/login_links")


def test_refresh_redirects_even_when_mirakl_refuses_the_write(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    mirakl.fail_s07([1])

    response = client.get(f"/api/public/onboarding/refresh?token={mapping.onboarding_token}")

    assert response.status_code == 302
    db.session.expire_all()
    assert "SHOP_UPDATE_ERROR" in mapping.mirakl_sync_error


# ---------------------------------------------------------------- account.updated


def test_account_updated_pushes_kyc_and_login_link_and_notifies(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    acct = mapping.stripe_account_id
    stripe.complete_onboarding(acct)
    event = account_event(stripe, acct, event_id="evt_onboarded")
    mirakl.clear_requests()

    response = deliver(client, event)

    assert response.status_code == 200
    assert response.get_data(as_text=True) == "Account mapping updated."
    db.session.expire_all()
    assert mapping.payout_enabled is True and mapping.payin_enabled is True
    assert mapping.details_submitted is True
    assert mapping.disabled_reason is None
    assert mapping.onboarding_token is None
    assert mapping.kyc_status == "APPROVED"
    assert mapping.mirakl_sync_pending is False
    # One S07 with the KYC status and the login link.
    (s07,) = mirakl.requests(path="/api/shops", method="PUT")
    (entry,) = s07["body"]["shops"]
    assert entry["shop_id"] == 1 and entry["kyc"] == {"status": "APPROVED"}
    assert shop(mirakl, 1)["kyc"]["status"] == "APPROVED"
    assert f"/_sandbox/express/{acct}/" in shop_field(mirakl, 1)
    assert mapping.onboarding_url == shop_field(mirakl, 1)
    # The operator notification is in the outbox.
    note = db.session.execute(select(Notification)).scalar_one()
    assert note.type == "account.updated"
    assert json.loads(note.payload) == {"miraklShopId": 1, "stripeUserId": acct}
    inbox = db.session.execute(select(WebhookEvent)).scalar_one()
    assert (inbox.stripe_event_id, inbox.status) == ("evt_onboarded", "processed")


def test_redelivery_is_a_no_op(client, runner, mirakl, stripe):
    acct = onboard(runner, mirakl, 1)[1].stripe_account_id
    stripe.complete_onboarding(acct)
    event = account_event(stripe, acct, event_id="evt_twice")
    assert deliver(client, event).status_code == 200
    mirakl.clear_requests()
    stripe.clear_requests()

    again = deliver(client, event)

    assert again.status_code == 200
    assert again.get_data(as_text=True) == "Event already processed."
    assert mirakl.requests(path="/api/shops", method="PUT") == []
    assert stripe.requests() == []
    assert count(Notification) == 1 and count(WebhookEvent) == 1


def test_bad_signature_is_400_and_nothing_is_stored(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    stripe.complete_onboarding(mapping.stripe_account_id)
    event = account_event(stripe, mapping.stripe_account_id)

    response = deliver(client, event, secret="whsec_operator")

    assert response.status_code == 400
    assert response.get_data(as_text=True) == "Invalid signature."
    db.session.expire_all()
    assert count(WebhookEvent) == 0 and count(Notification) == 0
    assert mapping.payout_enabled is False and mapping.onboarding_token is not None


def test_stale_payload_is_ignored_for_the_account_as_stripe_has_it_now(
    client, runner, mirakl, stripe
):
    mapping = onboard(runner, mirakl, 1)[1]
    acct = mapping.stripe_account_id
    stripe.complete_onboarding(acct)
    newer = account_event(stripe, acct, event_id="evt_newer")
    # An older event, delivered last, still says nothing was submitted.
    older = account_event(
        stripe, acct, event_id="evt_older", details_submitted=False, payouts_enabled=False
    )
    assert deliver(client, newer).status_code == 200

    response = deliver(client, older)

    assert response.status_code == 200
    db.session.expire_all()
    assert mapping.payout_enabled is True and mapping.kyc_status == "APPROVED"
    assert shop(mirakl, 1)["kyc"]["status"] == "APPROVED"


def test_account_rejected_after_an_enabled_payload_pushes_refused(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    acct = mapping.stripe_account_id
    stripe.complete_onboarding(acct)
    event = account_event(stripe, acct)  # says: enabled
    stripe.set_account(
        acct,
        charges_enabled=False,
        payouts_enabled=False,
        requirements={"disabled_reason": "rejected.fraud"},
    )

    assert deliver(client, event, path="").status_code == 200  # the deprecated alias

    db.session.expire_all()
    assert mapping.payout_enabled is False and mapping.payin_enabled is False
    assert mapping.disabled_reason == "rejected.fraud"
    assert shop(mirakl, 1)["kyc"]["status"] == "REFUSED"


def test_unknown_account_and_unsubmitted_details_are_ignored(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    stranger = get_stripe().create_account({"type": "express"}, idempotency_key="test-stranger")

    unknown = deliver(client, account_event(stripe, stranger["id"]))
    unsubmitted = deliver(client, account_event(stripe, mapping.stripe_account_id))

    assert unknown.status_code == 200
    assert unknown.get_data(as_text=True) == (
        "Ignoring account.updated event for non-Mirakl Stripe account."
    )
    assert unsubmitted.status_code == 200
    assert unsubmitted.get_data(as_text=True) == (
        "Ignoring account.updated event until details are submitted for account."
    )
    db.session.expire_all()
    assert mapping.onboarding_token is not None
    assert count(Notification) == 0
    statuses = db.session.execute(select(WebhookEvent.status)).scalars().all()
    assert statuses == ["ignored", "ignored"]


def test_failed_mirakl_push_is_retried_by_the_next_sync(client, runner, mirakl, stripe):
    mapping = onboard(runner, mirakl, 1)[1]
    stripe.complete_onboarding(mapping.stripe_account_id)
    mirakl.fail_s07([1])

    assert deliver(client, account_event(stripe, mapping.stripe_account_id)).status_code == 200

    db.session.expire_all()
    assert mapping.details_submitted is True  # the effect is committed
    assert mapping.mirakl_sync_pending is True
    assert "SHOP_UPDATE_ERROR" in mapping.mirakl_sync_error
    assert shop(mirakl, 1)["kyc"]["status"] == "PENDING_SUBMISSION"
    mirakl.fail_s07([])

    result = runner.invoke(args=["connector", "sync-onboarding"])

    assert "account updates to Mirakl: 1 pushed, 0 failed" in result.output
    db.session.expire_all()
    assert mapping.mirakl_sync_pending is False and mapping.mirakl_sync_error is None
    assert shop(mirakl, 1)["kyc"]["status"] == "APPROVED"
    assert "/_sandbox/express/" in shop_field(mirakl, 1)


# ---------------------------------------------------------------- mappings API


def test_mappings_api_needs_the_operator_token(client, mirakl, stripe):
    missing = client.post("/api/mappings", json={"miraklShopId": 1, "stripeUserId": "acct_1"})
    wrong = client.delete("/api/mappings/1", headers={"X-AUTH-TOKEN": "nope"})
    assert missing.status_code == 401 and missing.json == {"message": "Authentication Required"}
    assert wrong.status_code == 403


def test_create_get_and_delete_a_mapping(client, mirakl, stripe):
    mirakl.add_shops([make_shop(42)])
    account = get_stripe().create_account({"type": "custom"}, idempotency_key="test-custom")
    stripe.set_account(account["id"], payouts_enabled=True, charges_enabled=False)

    created = client.post(
        "/api/mappings", json={"miraklShopId": 42, "stripeUserId": account["id"]}, headers=AUTH
    )

    assert created.status_code == 201
    assert created.json["message"] == "Mirakl - Stripe mapping created"
    mapping_id = created.json["id"]
    one = client.get(f"/api/mappings/{mapping_id}", headers=AUTH)
    assert one.status_code == 200
    assert one.json["miraklShopId"] == 42 and one.json["stripeAccountId"] == account["id"]
    # Not swapped, unlike the reference.
    assert one.json["payoutEnabled"] is True and one.json["payinEnabled"] is False
    listed = client.get("/api/mappings", headers={**AUTH, "Accept": "application/json"})
    assert [m["id"] for m in listed.json] == [mapping_id]

    deleted = client.delete(f"/api/mappings/{mapping_id}", headers=AUTH)

    assert deleted.status_code == 204
    assert client.get(f"/api/mappings/{mapping_id}", headers=AUTH).status_code == 404
    assert client.delete(f"/api/mappings/{mapping_id}", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{not json", 400, "Invalid JSON format"),
        ({"miraklShopId": 42}, 400, "miraklShopId and stripeUserId are required"),
        ({"stripeUserId": "ACCT"}, 400, "miraklShopId and stripeUserId are required"),
        ({"miraklShopId": "x", "stripeUserId": "ACCT"}, 400, None),
        ({"miraklShopId": 999, "stripeUserId": "ACCT"}, 400, "Invalid Mirakl Shop ID"),
        (
            {"miraklShopId": 42, "stripeUserId": "acct_doesnotexist"},
            400,
            "Cannot find the Stripe account corresponding to this stripe Id",
        ),
        (
            {"miraklShopId": 1, "stripeUserId": "ACCT"},
            409,
            "The provided Mirakl Shop ID or Stripe User Id is already mapped",
        ),
        (
            {"miraklShopId": 42, "stripeUserId": "MAPPED"},
            409,
            "The provided Mirakl Shop ID or Stripe User Id is already mapped",
        ),
    ],
)
def test_create_mapping_errors(client, runner, mirakl, stripe, body, status, message):
    mapped = onboard(runner, mirakl, 1)[1].stripe_account_id
    mirakl.add_shops([make_shop(42)])
    free = get_stripe().create_account({"type": "custom"}, idempotency_key="test-free")
    if isinstance(body, dict):
        replace = {"ACCT": free["id"], "MAPPED": mapped}
        body = {k: replace.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
        response = client.post("/api/mappings", json=body, headers=AUTH)
    else:
        response = client.post(
            "/api/mappings", data=body, headers=AUTH, content_type="application/json"
        )

    assert response.status_code == status
    if message:
        assert response.json["message"] == message
    assert count(AccountMapping) == 1


# ---------------------------------------------------------------- console actions


def test_console_refresh_and_push_functions(app, runner, mirakl, stripe):
    from webapp.errors import ConnectorError, MiraklRejected
    from webapp.services.onboarding import kyc_push
    from webapp.services.onboarding import links as onboarding_links

    mapping = onboard(runner, mirakl, 1)[1]

    url = onboarding_links.refresh_onboarding_link(mapping.id)

    assert f"/_sandbox/onboarding/{mapping.stripe_account_id}/" in url
    assert shop_field(mirakl, 1) == url
    stripe.complete_onboarding(mapping.stripe_account_id)
    assert kyc_push.push_kyc_status(mapping.id) == "APPROVED"
    assert shop(mirakl, 1)["kyc"]["status"] == "APPROVED"
    assert "/_sandbox/express/" in shop_field(mirakl, 1)

    mirakl.fail_s07([1])
    with pytest.raises(MiraklRejected, match="SHOP_UPDATE_ERROR"):
        onboarding_links.refresh_onboarding_link(mapping.id)
    with pytest.raises(ConnectorError, match="SHOP_UPDATE_ERROR"):
        kyc_push.push_kyc_status(mapping.id)
    db.session.expire_all()
    assert mapping.mirakl_sync_pending is True  # the next sync-onboarding retries it
