"""``connector sync-onboarding`` against the Mirakl and Stripe sandboxes over HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sandbox.mirakl.demo import make_shop
from webapp.extensions import db
from webapp.models import AccountMapping, Config, JobRun, PendingShop
from webapp.services.clients import get_stripe
from webapp.services.ledger.keys import idempotency_key
from webapp.services.mirakl.types import parse_shop
from webapp.services.onboarding.rules import account_params

FIELD = "stripe-url"


def mappings() -> dict[int, AccountMapping]:
    rows = db.session.execute(select(AccountMapping)).scalars()
    return {m.mirakl_shop_id: m for m in rows}


def pending() -> dict[int, PendingShop]:
    return {p.mirakl_shop_id: p for p in db.session.execute(select(PendingShop)).scalars()}


def shop_field(mirakl, shop_id: int, code: str = FIELD) -> str | None:
    shop = next(s for s in mirakl.state()["shops"] if s["shop_id"] == shop_id)
    fields = {f["code"]: f.get("value") for f in shop.get("shop_additional_fields") or []}
    return fields.get(code)


def sync(runner, *args: str):
    result = runner.invoke(args=["connector", "sync-onboarding", *args])
    db.session.expire_all()
    return result


def test_new_shops_get_one_account_and_a_link_each(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(1), make_shop(2), make_shop(3)])

    result = sync(runner)

    assert result.exit_code == 0, result.output
    assert "shops: 3 fetched, 3 accounts created, 3 links written, 0 failed" in result.output
    accounts = stripe.objects("accounts")
    assert len(accounts) == 3
    by_shop = {a["metadata"]["miraklShopId"]: a for a in accounts}
    assert set(by_shop) == {"1", "2", "3"}
    account = by_shop["1"]
    assert account["type"] == "express"
    assert account["capabilities"] == {"transfers": "inactive"}  # active once onboarded
    assert account["settings"]["payouts"]["debit_negative_balances"] is False
    assert account["settings"]["payouts"]["schedule"]["interval"] == "manual"
    assert account["metadata"]["pluginName"] == "MiraklConnector"
    assert account["business_type"] is None  # no prefill by default

    rows = mappings()
    assert {shop: m.stripe_account_id for shop, m in rows.items()} == {
        int(s): a["id"] for s, a in by_shop.items()
    }
    mapping = rows[1]
    assert len(mapping.onboarding_token) == 64
    assert mapping.payout_enabled is False and mapping.payin_enabled is False
    assert mapping.kyc_status == "PENDING_SUBMISSION"
    assert mapping.ignored is False
    assert shop_field(mirakl, 1) == mapping.onboarding_url
    assert "/_sandbox/onboarding/" + mapping.stripe_account_id in mapping.onboarding_url
    assert pending() == {}

    # Account Links: our refresh URL with the token, the default return URL.
    links = stripe.requests(path_prefix="/v1/account_links", method="POST")
    assert len(links) == 3
    sent = next(r for r in links if mapping.stripe_account_id in str(r))
    assert (
        f"http://connector.test/api/public/onboarding/refresh?token={mapping.onboarding_token}"
        in str(sent)
    )
    # One batched S07 for the three links.
    s07 = mirakl.requests(path="/api/shops", method="PUT")
    assert len(s07) == 1
    assert [s["shop_id"] for s in s07[0]["body"]["shops"]] == [1, 2, 3]
    # Account creation carries a per-shop idempotency key.
    creates = stripe.requests(path_prefix="/v1/accounts", method="POST")
    assert len(creates) == 3
    # S20 with both domains, and the checkpoint is the newest last_updated_date.
    s20 = mirakl.requests(path="/api/shops", method="GET")
    assert s20[0]["query"]["domains"] == ["PRODUCT,SERVICE"]
    checkpoint = db.session.execute(
        select(Config.value).where(Config.key == "seller_onboarding_checkpoint")
    ).scalar_one()
    assert checkpoint == make_shop(1)["last_updated_date"]


def test_rerun_creates_nothing_new(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(1), make_shop(2)])
    sync(runner)
    url = mappings()[1].onboarding_url
    stripe.clear_requests()

    result = sync(runner)

    assert result.exit_code == 0, result.output
    assert "0 accounts created, 0 links written, 0 failed" in result.output
    assert len(stripe.objects("accounts")) == 2
    assert stripe.requests(method="POST") == []
    assert shop_field(mirakl, 1) == url
    s20 = mirakl.requests(path="/api/shops", method="GET")
    assert s20[-1]["query"]["updated_since"] == [make_shop(1)["last_updated_date"]]


def test_prefill_sends_shop_data(make_app, mirakl, stripe):
    app = make_app(STRIPE_PREFILL_ONBOARDING="true")
    mirakl.add_shops([make_shop(5, is_professional=True)])
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["connector", "sync-onboarding"])
    assert result.exit_code == 0, result.output
    (account,) = stripe.objects("accounts")
    assert account["business_type"] == "company"
    assert account["business_profile"]["name"] == "Shop 5"
    assert account["business_profile"]["url"] == "https://shop5.example.com"
    assert account["business_profile"]["support_email"] == "seller5@example.com"
    assert account["business_profile"]["support_phone"] == "+33100000000"


def test_existing_links_are_kept_and_legacy_oauth_links_replaced(app, runner, mirakl, stripe):
    oauth = "https://connect.stripe.com/express/oauth/authorize?client_id=ca_1"
    mirakl.add_shops(
        [
            make_shop(1, shop_additional_fields=[{"code": FIELD, "value": "https://mine"}]),
            make_shop(2, shop_additional_fields=[{"code": FIELD, "value": oauth}]),
        ]
    )

    result = sync(runner)

    assert "2 accounts created, 1 links written, 0 failed" in result.output
    assert shop_field(mirakl, 1) == "https://mine"
    assert shop_field(mirakl, 2) == mappings()[2].onboarding_url
    assert "/_sandbox/onboarding/" in shop_field(mirakl, 2)


@pytest.mark.parametrize(("value", "ignored"), [("true", True), ("false", False)])
def test_ignored_shops_still_get_account_and_link(app, runner, mirakl, stripe, value, ignored):
    fields = [{"code": "stripe-ignored", "type": "BOOLEAN", "value": value}]
    mirakl.add_shops([make_shop(7, shop_additional_fields=fields)])

    sync(runner)

    mapping = mappings()[7]
    assert mapping.ignored is ignored
    assert shop_field(mirakl, 7) == mapping.onboarding_url


def test_ignored_flag_follows_the_shop_field(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(7)])
    sync(runner)
    assert mappings()[7].ignored is False
    mirakl.patch_shop(
        7,
        last_updated_date="2030-01-01T00:00:00Z",
        shop_additional_fields=[
            {"code": FIELD, "value": shop_field(mirakl, 7)},
            {"code": "stripe-ignored", "value": "true"},
        ],
    )

    sync(runner)

    assert mappings()[7].ignored is True
    assert len(stripe.objects("accounts")) == 1


def test_crash_after_account_creation_still_one_account(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(4)])
    # Stripe creates the account but the answer is lost (as if we crashed before saving).
    stripe.set_faults(after_rate=1.0, paths=["/v1/accounts"], methods=["POST"], max_faults=1)

    first = sync(runner)

    assert first.exit_code == 0, first.output
    assert "0 accounts created, 0 links written, 1 failed" in first.output
    assert len(stripe.objects("accounts")) == 1
    assert mappings() == {}
    assert "Stripe did not answer" in pending()[4].reason
    stripe.clear_faults()

    second = sync(runner)

    assert "0 accounts created, 1 accounts recovered" in second.output, second.output
    assert stripe.requests(path_prefix="/v1/accounts", method="GET")  # listed to find it
    (account,) = stripe.objects("accounts")
    assert mappings()[4].stripe_account_id == account["id"]
    assert shop_field(mirakl, 4) == mappings()[4].onboarding_url
    assert pending() == {}


def test_claimed_shop_is_found_by_key_when_listing_misses_it(app, runner, mirakl, stripe):
    """A claim left by a crash, account made with the shop's key but no metadata match."""
    mirakl.add_shops([make_shop(8)])
    db.session.add(PendingShop(mirakl_shop_id=8, reason="account creation in progress"))
    db.session.commit()
    params = account_params(parse_shop(make_shop(8)), prefill=False)
    made = get_stripe().create_account(params, idempotency_key=idempotency_key("account", 8, 0))

    sync(runner)

    assert [a["id"] for a in stripe.objects("accounts")] == [made["id"]]
    assert mappings()[8].stripe_account_id == made["id"]


def test_refused_account_is_retried_with_a_new_key(app, runner, mirakl, stripe):
    later = "2030-01-01T00:00:00Z"  # moves the checkpoint past shop 9
    mirakl.add_shops([make_shop(9), make_shop(10, last_updated_date=later)])
    # The shop's first key was already used with other parameters: Stripe refuses it (400).
    get_stripe().create_account(
        {"type": "custom"}, idempotency_key=idempotency_key("account", 9, 0)
    )

    first = sync(runner)

    assert "2 fetched, 1 accounts created, 1 links written, 1 failed" in first.output
    assert pending()[9].attempts == 1
    assert "Stripe refused" in pending()[9].reason
    assert set(mappings()) == {10}

    stripe.clear_requests()

    second = sync(runner)  # S20 since the checkpoint misses shop 9: it is fetched by id

    assert "0 fetched, 1 retried, 1 accounts created, 1 links written, 0 failed" in second.output
    s20 = mirakl.requests(path="/api/shops", method="GET")
    assert s20[-1]["query"]["shop_ids"] == ["9"]
    assert mappings()[9].stripe_account_id != ""
    assert shop_field(mirakl, 9) == mappings()[9].onboarding_url
    assert pending() == {}
    assert len(stripe.objects("accounts")) == 3  # the test's custom one, and ours
    # A refused creation made no account: no need to list them all to find it.
    assert stripe.requests(path_prefix="/v1/accounts", method="GET") == []


def test_s07_error_on_one_shop_is_recorded_and_retried(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(1), make_shop(2)])
    mirakl.fail_s07([2])

    first = sync(runner)

    assert first.exit_code == 0
    assert "2 accounts created, 1 links written, 1 failed" in first.output
    assert shop_field(mirakl, 1) is not None
    assert shop_field(mirakl, 2) is None
    assert "SHOP_UPDATE_ERROR" in pending()[2].reason
    assert "SHOP_UPDATE_ERROR" in mappings()[2].mirakl_sync_error
    mirakl.fail_s07([])

    second = sync(runner)

    assert "1 links written, 0 failed" in second.output
    assert shop_field(mirakl, 2) == mappings()[2].onboarding_url
    assert mappings()[2].mirakl_sync_error is None
    assert pending() == {}
    assert len(stripe.objects("accounts")) == 2


def test_shop_without_id_is_skipped_and_the_run_continues(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(1), {**make_shop(2), "shop_id": "not-a-number"}])

    result = sync(runner)

    assert result.exit_code == 0, result.output
    assert "shops: 2 fetched, 1 accounts created, 1 links written, 1 failed" in result.output
    assert set(mappings()) == {1}


def test_mirakl_down_fails_the_run(app, runner, mirakl, stripe):
    mirakl.set_faults(sequence=[500, 500, 500, 500, 500, 500])

    result = sync(runner)

    assert result.exit_code != 0
    assert "S20" in result.output
    run = db.session.execute(select(JobRun)).scalar_one()
    assert run.outcome == "failed"


def test_deprecated_delay_argument_is_accepted(app, runner, mirakl, stripe):
    mirakl.add_shops([make_shop(1)])
    result = sync(runner, "10")
    assert result.exit_code == 0, result.output
    assert len(mappings()) == 1


def test_onboarding_disabled(make_app, mirakl, stripe):
    app = make_app(ENABLE_SELLER_ONBOARDING="false")
    mirakl.add_shops([make_shop(1)])
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["connector", "sync-onboarding"])
    assert result.exit_code == 0
    assert "seller onboarding disabled" in result.output
    assert stripe.objects("accounts") == []


# ---------------------------------------------------------------- never a second account


def make_account(shop_id: int | None) -> str:
    """A connected account made before us (by the PHP connector when it names a shop)."""
    metadata = {"miraklShopId": str(shop_id)} if shop_id is not None else {}
    params = {"type": "express", "metadata": metadata}
    return get_stripe().create_account(params, idempotency_key=f"before-{shop_id}")["id"]


def test_shops_onboarded_before_adopt_their_account(app, runner, mirakl, stripe):
    by_php = make_account(21)  # metadata and link, as the PHP connector leaves them
    by_hand = make_account(None)  # no metadata: found through the link only
    metadata_only = make_account(23)  # the link was never written (S07 failed back then)
    link = f"{stripe.base_url}/_sandbox/onboarding/{by_php}/tok"
    login = f"{stripe.base_url}/_sandbox/express/{by_hand}/tok"
    mirakl.add_shops(
        [
            make_shop(21, shop_additional_fields=[{"code": FIELD, "value": link}]),
            make_shop(22, shop_additional_fields=[{"code": FIELD, "value": login}]),
            make_shop(23),
        ]
    )
    stripe.clear_requests()

    result = sync(runner)

    assert result.exit_code == 0, result.output
    assert "0 accounts created, 3 accounts recovered, 1 links written" in result.output
    assert len(stripe.objects("accounts")) == 3
    assert [r for r in stripe.requests(method="POST") if r["path"] == "/v1/accounts"] == []
    found = {shop: m.stripe_account_id for shop, m in mappings().items()}
    assert found == {21: by_php, 22: by_hand, 23: metadata_only}
    assert shop_field(mirakl, 21) == link and shop_field(mirakl, 22) == login  # kept
    assert f"/_sandbox/onboarding/{metadata_only}/" in shop_field(mirakl, 23)


def test_an_account_of_another_shop_is_never_adopted(app, runner, mirakl, stripe):
    other = make_account(99)
    mirakl.add_shops(
        [
            make_shop(24, shop_additional_fields=[
                {"code": FIELD, "value": f"{stripe.base_url}/_sandbox/onboarding/{other}/tok"}
            ]),
        ]
    )  # fmt: skip

    result = sync(runner)

    assert "1 accounts created" in result.output, result.output
    assert mappings()[24].stripe_account_id != other
    assert len(stripe.objects("accounts")) == 2
