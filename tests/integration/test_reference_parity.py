"""Behaviours where the connector follows the PHP reference 4.1.1 (issue 17), end to end
against the sandboxes: deprecated variables, tax split without a tax account, orders without
a shop, idempotency keys on links, the pinned Stripe API version and app info, CORS."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sandbox.mirakl.demo import make_product_order, make_shop
from sandbox.stripe.events import make_event, sign_payload
from tests.integration import test_process_refund as refunds_e2e
from tests.seeding import create_ready_account, fund_platform
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AccountMapping, Lease, Notification, StripeTransfer
from webapp.services.stripe.gateway import STRIPE_API_VERSION

SPLIT_ON = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true"}
REFUND_FLAGS = {"ENABLE_PRODUCT_PAYMENT_REFUND": "true"}


def connect_shop(shop_id: int) -> str:
    account = create_ready_account(f"test-parity-account-{shop_id}")
    fund_platform()  # these orders carry no charge: transfers come from the platform balance
    db.session.add(AccountMapping(mirakl_shop_id=shop_id, stripe_account_id=account))
    db.session.commit()
    return account


def transfer_rows() -> dict[str, tuple[str, str | None]]:
    db.session.expire_all()
    return {
        r.mirakl_id: (r.status, r.status_reason)
        for r in db.session.execute(select(StripeTransfer)).scalars()
    }


def process_transfer(app) -> None:
    result = app.test_cli_runner().invoke(args=["connector", "process-transfer"])
    assert result.exit_code == 0, result.output
    db.session.rollback()


# ---------------------------------------------------------------- deprecated variables


def test_empty_sellers_secret_falls_back_on_the_deprecated_webhook_secret(make_app, stripe):
    app = make_app(STRIPE_SELLERS_WEBHOOK_SECRET="", STRIPE_WEBHOOK_SECRET="whsec_legacy")
    event = make_event("payout.failed", {"id": "po_unknown", "object": "payout"})
    payload = json.dumps(event).encode()

    response = app.test_client().post(
        "/api/public/webhook/sellers",
        data=payload,
        headers={"Stripe-Signature": sign_payload(payload, "whsec_legacy")},
        content_type="application/json",
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data(as_text=True) == "Ignoring payout.failed event for unknown payout."


def test_empty_split_flag_falls_back_on_the_deprecated_one(make_app, mirakl, stripe):
    app = make_app(ENABLE_PRODUCT_PAYMENT_SPLIT="", ENABLES_AUTOMATIC_TRANSFER_CREATION="true")
    with app.app_context():
        connect_shop(1)
        mirakl.add_orders([make_product_order("DEP-1-A")])

        process_transfer(app)

        assert transfer_rows() == {"DEP-1-A": ("TRANSFER_CREATED", None)}


# ---------------------------------------------------------------- transfers


def test_tax_split_without_tax_account_holds_only_the_tax_transfers(make_app, mirakl, stripe):
    app = make_app(**SPLIT_ON, ENABLE_PAYMENT_TAX_SPLIT="true", STRIPE_TAX_ACCOUNT="")
    with app.app_context():
        connect_shop(1)
        mirakl.add_orders([make_product_order("TAX-1-A"), make_product_order("TAX-2-A")])

        process_transfer(app)

        assert transfer_rows() == {
            "TAX-1-A": ("TRANSFER_CREATED", None),
            "TAX-2-A": ("TRANSFER_CREATED", None),
            "TAX-1-A_TAX": ("TRANSFER_ON_HOLD", "No stripe account ID provided"),
            "TAX-2-A_TAX": ("TRANSFER_ON_HOLD", "No stripe account ID provided"),
        }
        sent = {t["metadata"]["miraklId"]: t["amount"] for t in stripe.objects("transfers")}
        assert sent == {"TAX-1-A": 7205, "TAX-2-A": 7205}  # seller part, taxes held back


def test_order_without_shop_id_is_held_with_the_reference_reason(make_app, mirakl, stripe):
    app = make_app(**SPLIT_ON)
    with app.app_context():
        connect_shop(1)
        mirakl.add_orders(
            [make_product_order("NOSHOP-1-A", shop_id=None), make_product_order("SHOP-1-A")]
        )

        process_transfer(app)

        assert transfer_rows() == {
            "NOSHOP-1-A": ("TRANSFER_ON_HOLD", "No shop ID provided"),
            "SHOP-1-A": ("TRANSFER_CREATED", None),
        }
        assert [t["metadata"]["miraklId"] for t in stripe.objects("transfers")] == ["SHOP-1-A"]


# ---------------------------------------------------------------- Stripe requests


def test_links_carry_derived_idempotency_keys_and_every_request_the_pinned_version(
    app, runner, client, mirakl, stripe
):
    mirakl.add_shops([make_shop(1)])
    assert runner.invoke(args=["connector", "sync-onboarding"]).exit_code == 0
    mapping = db.session.execute(select(AccountMapping)).scalar_one()
    stripe.complete_onboarding(mapping.stripe_account_id)
    assert client.get(f"/api/public/onboarding/refresh?token={mapping.onboarding_token}")

    acct = mapping.stripe_account_id
    journal = stripe.requests()
    (account_link,) = [r for r in journal if r["path"] == "/v1/account_links"]
    (login_link,) = [r for r in journal if r["path"].endswith("/login_links")]
    assert account_link["idempotency_key"].startswith(f"mirakl-connector:account-link:{acct}:")
    assert login_link["idempotency_key"].startswith(f"mirakl-connector:login-link:{acct}:")
    assert {r["stripe_version"] for r in journal} == {STRIPE_API_VERSION}
    for entry in journal:
        assert "MiraklConnector/" in entry["user_agent"]
        application = json.loads(entry["client_user_agent"])["application"]
        assert application["name"] == "MiraklConnector"


# ---------------------------------------------------------------- CORS


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost", True),
        ("https://localhost:8080", True),
        ("HTTP://LOCALHOST:3000", True),
        ("https://evil.example.com", False),
        ("http://localhost.evil.example.com", False),
    ],
)
def test_cors_on_api_follows_the_default_origin_regex(client, origin, allowed):
    preflight = client.options(
        "/api/transfers",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-AUTH-TOKEN",
        },
    )
    get = client.get(
        "/api/transfers",
        headers={
            "Origin": origin,
            "X-AUTH-TOKEN": "operator-password",
            "Accept": "application/json",
        },
    )

    assert preflight.status_code == 200
    assert get.status_code == 200
    if allowed:
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "X-AUTH-TOKEN" in preflight.headers["Access-Control-Allow-Headers"].upper()
        assert get.headers["Access-Control-Allow-Origin"] == origin
        assert get.headers["Access-Control-Expose-Headers"] == "Link"
    else:
        assert "Access-Control-Allow-Origin" not in preflight.headers
        assert "Access-Control-Allow-Origin" not in get.headers


def test_cors_origin_comes_from_the_setting_and_stays_off_the_console(make_app):
    client = make_app(CORS_ALLOW_ORIGIN=r"^https://shop\.example\.com$").test_client()
    origin = {"Origin": "https://shop.example.com"}

    api = client.get("/api/transfers", headers={**origin, "X-AUTH-TOKEN": "operator-password"})
    local = client.get(
        "/api/transfers",
        headers={"Origin": "http://localhost", "X-AUTH-TOKEN": "operator-password"},
    )
    console = client.get("/login", headers=origin)

    assert api.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Access-Control-Allow-Origin" not in local.headers
    assert "Access-Control-Allow-Origin" not in console.headers


# ---------------------------------------------------------------- critical-error e-mail


def test_a_failed_run_mails_the_critical_error_once_per_job_and_hour(make_app, mirakl, smtp):
    app = make_app(
        **SPLIT_ON,
        ENABLE_PRODUCT_PAYMENT_REFUND="true",
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
        MIRAKL_MAX_RETRIES="0",
    )
    mirakl.set_faults(error_rate=1.0)
    runner = app.test_cli_runner()
    with app.app_context():
        for _ in range(3):  # a job failing on every run…
            assert runner.invoke(args=["connector", "process-transfer"]).exit_code == 1
        assert runner.invoke(args=["connector", "process-refund"]).exit_code == 1

        subjects = [m["Subject"] for m in smtp.messages]
        assert len(subjects) == 2  # …mails once; another job mails on its own
        assert subjects[0].startswith("[Stripe-Mirakl] An Error Occurred! OR11 GET /api/orders")
        assert subjects[1].startswith("[Stripe-Mirakl] An Error Occurred! PA12 GET")
        body = smtp.messages[0].get_body(("plain",)).get_content()
        assert "Job: process-transfer (run #" in body
        assert "HTTP 500" in body

        # Once the hour has passed, the next failure mails again.
        db.session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert runner.invoke(args=["connector", "process-transfer"]).exit_code == 1
        assert len(smtp.messages) == 3


def test_a_run_that_completes_mails_nothing(make_app, mirakl, stripe, smtp):
    app = make_app(**SPLIT_ON, MAILER_DSN=smtp.dsn, TECHNICAL_ALERT_EMAIL="ops@example.com")
    with app.app_context():
        assert app.test_cli_runner().invoke(args=["connector", "process-transfer"]).exit_code == 0
    assert smtp.messages == []


# ---------------------------------------------------------------- refunds: PA02 unavailable


@pytest.mark.parametrize("fault", [500, "drop"], ids=["5xx", "connection lost"])
@pytest.mark.parametrize("validated_meanwhile", [False, True], ids=["still listed", "applied"])
def test_pa02_unavailable_fails_the_refund_notifies_then_validates_once(
    make_app, mirakl, stripe, fault, validated_meanwhile
):
    app = make_app(**REFUND_FLAGS, MIRAKL_MAX_RETRIES="0")
    with app.app_context():
        charge = stripe.create_charge(amount=8472, currency="eur")
        refunds_e2e.split(refunds_e2e.seller(), charge["id"])
        mirakl.add_orders([refunds_e2e.product_order_with_refund()])
        # PA12 answers; PA02 fails (no retries left: the client's are spent).
        mirakl.set_faults(sequence=[200, fault], paths=[refunds_e2e.PA_PATH])

        refunds_e2e.run_refunds(app)

        row = refunds_e2e.refund_row()
        assert row.status == "REFUND_FAILED"
        assert row.status_reason.startswith("Mirakl validation failed: PA02 PUT")
        assert row.stripe_refund_id == refunds_e2e.stripe_refunds(stripe)[0]["id"]
        (note,) = db.session.execute(select(Notification)).scalars()
        assert note.type == "refund.failed"
        assert json.loads(note.payload)["failedReason"] == row.status_reason

        mirakl.clear_faults()
        if validated_meanwhile:  # the PA02 had reached Mirakl: PA12 no longer lists it
            mirakl.add_orders([refunds_e2e.product_order_with_refund(state="REFUNDED")])

        refunds_e2e.run_refunds(app)

        row = refunds_e2e.refund_row()
        assert (row.status, row.status_reason) == ("REFUND_CREATED", None)
        assert row.mirakl_validation_time is not None
        assert len(stripe.requests(path_prefix="/v1/refunds", method="POST")) == 1
