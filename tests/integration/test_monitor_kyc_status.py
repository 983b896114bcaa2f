"""``connector monitor-kyc-status`` against the sandboxes and a real local SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from sandbox.mirakl.demo import make_shop
from webapp.extensions import db
from webapp.models import AccountMapping


@pytest.fixture
def kyc_app(make_app, smtp, request) -> Iterator:
    overrides = getattr(request, "param", {})
    app = make_app(
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="ops@example.com",
        TECHNICAL_ALERT_EMAIL_FROM="connector@example.com",
        **overrides,
    )
    with app.app_context():
        yield app


def run(app, command: str):
    result = app.test_cli_runner().invoke(args=["connector", command])
    db.session.expire_all()
    return result


def mappings() -> dict[int, AccountMapping]:
    return {m.mirakl_shop_id: m for m in db.session.execute(select(AccountMapping)).scalars()}


def setup_three_shops(app, mirakl, stripe) -> dict[int, AccountMapping]:
    """Shop 1 approved, shop 2 rejected by Stripe, shop 3 never submitted its details."""
    mirakl.add_shops([make_shop(1), make_shop(2), make_shop(3)])
    assert run(app, "sync-onboarding").exit_code == 0
    rows = mappings()
    stripe.complete_onboarding(rows[1].stripe_account_id)
    stripe.complete_onboarding(rows[2].stripe_account_id)
    stripe.set_account(
        rows[2].stripe_account_id,
        charges_enabled=False,
        payouts_enabled=False,
        requirements={"disabled_reason": "rejected.fraud"},
    )
    return rows


def kyc(mirakl, shop_id: int) -> dict:
    return next(s for s in mirakl.state()["shops"] if s["shop_id"] == shop_id)["kyc"]


def test_accounts_needing_kyc_are_flagged_and_mailed(kyc_app, mirakl, stripe, smtp):
    rows = setup_three_shops(kyc_app, mirakl, stripe)
    mirakl.clear_requests()

    result = run(kyc_app, "monitor-kyc-status")

    assert result.exit_code == 0, result.output
    # Shop 1 finished onboarding without a webhook reaching us: the monitor catches up.
    assert "accounts: 3 accounts checked, 2 need KYC, 1 recovered" in result.output
    assert "e-mail: sent" in result.output
    (message,) = smtp.messages
    assert message["Subject"] == "[Stripe-Mirakl] KYC Required"
    assert message["X-Envelope-To"] == "ops@example.com"
    assert message["From"] == "connector@example.com"
    body = message.get_body(("plain",)).get_content()
    lines = {line.split()[1]: line.split() for line in body.splitlines()[3:] if line.strip()}
    assert lines[rows[2].stripe_account_id] == [
        str(rows[2].id),
        rows[2].stripe_account_id,
        "2",
        "REFUSED",
    ]
    assert lines[rows[3].stripe_account_id][2:] == ["3", "PENDING_SUBMISSION"]
    assert rows[1].stripe_account_id not in body
    # Flagged on the mapping, never by `ignored` (that would lose the shop's transfers).
    now = mappings()
    assert now[2].kyc_status == "REFUSED" and now[2].ignored is False
    assert now[2].payout_enabled is False and now[2].disabled_reason == "rejected.fraud"
    assert now[1].payout_enabled is True  # flags refreshed even without a webhook
    # KYC_MIRAKL_SHOP_DISABLE_UPDATE is off: nothing written to Mirakl.
    assert mirakl.requests(path="/api/shops", method="PUT") == []


@pytest.mark.parametrize("kyc_app", [{"KYC_MIRAKL_SHOP_DISABLE_UPDATE": "true"}], indirect=True)
def test_statuses_and_links_are_pushed_in_one_s07(kyc_app, mirakl, stripe, smtp):
    rows = setup_three_shops(kyc_app, mirakl, stripe)
    mirakl.clear_requests()

    result = run(kyc_app, "monitor-kyc-status")

    assert result.exit_code == 0, result.output
    assert "3 pushed to Mirakl, 0 push failed" in result.output
    (s07,) = mirakl.requests(path="/api/shops", method="PUT")
    entries = {e["shop_id"]: e for e in s07["body"]["shops"]}
    assert set(entries) == {1, 2, 3}
    assert entries[1]["kyc"] == {"status": "APPROVED", "reason": "KYC approved"}
    assert entries[3]["kyc"]["status"] == "PENDING_SUBMISSION"
    assert entries[2]["kyc"] == {
        "status": "REFUSED",
        "reason": "STRIPE CONNECT ACCOUNT DISABLEMENT",
    }
    (link,) = entries[2]["shop_additional_fields"]
    assert link["code"] == "stripe-url"
    assert f"/_sandbox/onboarding/{rows[2].stripe_account_id}/" in link["value"]
    assert kyc(mirakl, 2)["status"] == "REFUSED"
    # The new link sends the seller back through our refresh endpoint, not Stripe's dashboard.
    sent = stripe.requests(path_prefix="/v1/account_links", method="POST")[-1]
    assert "http://connector.test/api/public/onboarding/refresh?token=" in str(sent)
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("kyc_app", [{"KYC_MIRAKL_SHOP_DISABLE_UPDATE": "true"}], indirect=True)
def test_recovered_accounts_are_unflagged(kyc_app, mirakl, stripe, smtp):
    rows = setup_three_shops(kyc_app, mirakl, stripe)
    run(kyc_app, "monitor-kyc-status")
    stripe.complete_onboarding(rows[2].stripe_account_id)
    stripe.complete_onboarding(rows[3].stripe_account_id)
    smtp.messages.clear()
    mirakl.clear_requests()

    result = run(kyc_app, "monitor-kyc-status")

    assert "0 need KYC, 2 recovered, 2 pushed to Mirakl" in result.output
    assert smtp.messages == []
    (s07,) = mirakl.requests(path="/api/shops", method="PUT")
    entries = {e["shop_id"]: e for e in s07["body"]["shops"]}
    assert entries[2]["kyc"] == {"status": "APPROVED", "reason": "KYC approved"}
    assert "/_sandbox/express/" in entries[2]["shop_additional_fields"][0]["value"]
    assert kyc(mirakl, 3)["status"] == "APPROVED"
    assert mappings()[2].kyc_status == "APPROVED"


def test_no_mail_when_every_account_is_fine(kyc_app, mirakl, stripe, smtp):
    mirakl.add_shops([make_shop(1)])
    run(kyc_app, "sync-onboarding")
    stripe.complete_onboarding(mappings()[1].stripe_account_id)

    result = run(kyc_app, "monitor-kyc-status")

    assert result.exit_code == 0
    assert "1 accounts checked, 0 need KYC" in result.output
    assert smtp.messages == []
