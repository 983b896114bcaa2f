"""``connector reconcile`` against the sandboxes: each class of drift made on purpose gives
exactly that finding; a clean marketplace gives none; a finding resolves when the drift goes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import delete, select

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.demo import make_invoice, make_product_order, make_refund_line
from sandbox.stripe.control import StripeControl
from tests.seeding import create_ready_account
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Notification,
    ReconciliationFinding,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferType,
)
from webapp.services.clients import get_stripe

FLAGS = {
    "ENABLE_PRODUCT_PAYMENT_SPLIT": "true",
    "ENABLE_PRODUCT_PAYMENT_REFUND": "true",
    "ENABLE_SERVICE_PAYMENT_REFUND": "true",
}
ORDERS = 100  # the 1,000-order clean run is in bench/reconcile_benchmark.py (about 60 s)
REFUND_EVERY = 4  # one order in four has a refund
INVOICES = 5


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    application = make_app(**FLAGS)
    with application.app_context():
        yield application


def cli(app: Flask, *args: str) -> list[str]:
    result = app.test_cli_runner().invoke(args=["connector", *args])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.output.splitlines()


def seller(stripe: StripeControl, shop_id: int = 1) -> str:
    """A connected account with funds and payouts enabled, mapped to the shop."""
    acct = create_ready_account(f"test-account-{shop_id}")
    stripe.set_account(acct, charges_enabled=True, payouts_enabled=True)
    stripe.set_balance(acct, "eur", 10_000_000)
    db.session.add(
        AccountMapping(
            mirakl_shop_id=shop_id, stripe_account_id=acct, payout_enabled=True, payin_enabled=True
        )
    )
    db.session.commit()
    return acct


def marketplace(
    app: Flask, stripe: StripeControl, mirakl: MiraklControl, orders: int = ORDERS
) -> str:
    """Orders paid to the seller, some refunded (refund + reversal), invoices paid out: all
    made by the connector's own commands, so everything agrees."""
    acct = seller(stripe)
    batch = []
    for i in range(orders):
        charge = stripe.create_charge(amount=8472, currency="eur")["id"]
        refunds = [make_refund_line(f"{9000 + i}")] if i % REFUND_EVERY == 0 else []
        batch.append(make_product_order(f"W-{i:04d}-A", transaction_number=charge, refunds=refunds))
    mirakl.add_orders(batch)
    mirakl.add_invoices([make_invoice(100 + j, shop_id=1) for j in range(INVOICES)])
    cli(app, "process-transfer")
    cli(app, "process-refund")
    cli(app, "process-payout")
    return acct


def reconcile(app: Flask, *args: str) -> list[str]:
    return cli(app, "reconcile", *args)


def open_findings() -> list[tuple[str, str]]:
    """(class, operation) of every open finding."""
    rows = db.session.execute(
        select(ReconciliationFinding)
        .where(ReconciliationFinding.resolved_at.is_(None))
        .order_by(ReconciliationFinding.id)
    ).scalars()
    return [(row.finding_class, row.operation) for row in rows]


def the_finding() -> ReconciliationFinding:
    return db.session.execute(
        select(ReconciliationFinding).where(ReconciliationFinding.resolved_at.is_(None))
    ).scalar_one()


def order_transfer(order_id: str = "W-0001-A") -> StripeTransfer:
    return db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.mirakl_id == order_id,
            StripeTransfer.type == TransferType.PRODUCT_ORDER.value,
        )
    ).scalar_one()


def mismatches() -> list[dict]:
    notes = db.session.execute(
        select(Notification).where(Notification.type == "reconciliation.mismatch")
    ).scalars()
    return [json.loads(note.payload) for note in notes]


@pytest.fixture
def world(app, stripe, mirakl) -> str:
    """A small clean marketplace (12 orders, 3 refunds, 5 invoices)."""
    return marketplace(app, stripe, mirakl, orders=12)


# ---------------------------------------------------------------- clean runs


def test_clean_marketplace_has_no_finding(app, stripe, mirakl):
    marketplace(app, stripe, mirakl)
    stripe.clear_requests()

    lines = reconcile(app)

    assert open_findings() == []
    assert "findings: 0 new, 0 resolved, none, everything agrees" in lines
    counts = next(line for line in lines if line.startswith("compared:"))
    assert f"{ORDERS + 3 * INVOICES} transfer" in counts  # orders, and 3 per invoice
    assert f"{ORDERS // REFUND_EVERY} reversal, {ORDERS // REFUND_EVERY} refund" in counts
    assert f"{INVOICES} payout" in counts
    # Read-only: not one POST reached Stripe; lists are paged by 100 with created filters.
    assert stripe.requests(method="POST") == []
    listed = stripe.requests(path_prefix="/v1/transfers", method="GET")
    assert listed and all(str(r["params"]["limit"]) == "100" for r in listed)
    assert all(set(r["params"]["created"]) == {"gte", "lte"} for r in listed)


def test_window_options_and_repeat_runs_change_nothing(app, world):
    reconcile(app, "--since", "2020-01-01", "--until", "2099-12-31")
    reconcile(app)
    assert db.session.execute(select(ReconciliationFinding)).first() is None


def test_since_after_until_fails_with_one_line(app):
    result = app.test_cli_runner().invoke(
        args=["connector", "reconcile", "--since", "2026-02-02", "--until", "2026-01-01"]
    )
    assert result.exit_code == 1
    assert "is after --until" in result.output


# ---------------------------------------------------------------- each class of drift


def test_missing_in_stripe_then_resolved_when_restored_row_goes(app, stripe, world):
    row = order_transfer()
    stripe.delete_object("transfers", row.transfer_id)

    lines = reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("missing_in_stripe", "transfer")
    assert (finding.operation_id, finding.stripe_id, finding.mirakl_id) == (
        row.id,
        row.transfer_id,
        "W-0001-A",
    )
    assert finding.our_amount == row.amount and finding.their_amount is None
    assert any(line.startswith("finding: missing_in_stripe transfer") for line in lines)
    assert mismatches() == []  # not a notified class

    # The operator aborts the row (no money moved): the finding resolves on the next run.
    db.session.execute(delete(StripeTransfer).where(StripeTransfer.id == row.id))
    db.session.commit()
    reconcile(app)
    assert open_findings() == []
    assert the_resolved().resolved_at is not None


def the_resolved() -> ReconciliationFinding:
    return db.session.execute(select(ReconciliationFinding)).scalar_one()


def test_duplicate_transfer_with_our_metadata_is_unknown_to_us_and_notified(app, stripe, world):
    row = order_transfer()
    duplicate = get_stripe().create_transfer(
        amount=row.amount,
        currency="eur",
        destination=world,
        metadata={"miraklId": row.mirakl_id, "connectorType": row.type},
        idempotency_key="a-second-transfer",
    )

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("unknown_to_us", "transfer")
    assert (finding.stripe_id, finding.operation_id) == (duplicate["id"], row.id)
    assert "duplicate" in finding.detail
    [note] = mismatches()
    assert note["class"] == "unknown_to_us" and note["stripeId"] == duplicate["id"]
    assert note["theirAmount"] == row.amount and note["currency"] == "eur"

    reconcile(app)  # seen again: still one finding, not notified twice
    assert len(mismatches()) == 1 and len(open_findings()) == 1


def test_amount_differs_then_resolved_when_corrected(app, stripe, world):
    row = order_transfer()
    stripe.edit_object("transfers", row.transfer_id, amount=row.amount - 100)

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("amount_differs", "transfer")
    assert (finding.our_amount, finding.their_amount) == (row.amount, row.amount - 100)
    assert [note["class"] for note in mismatches()] == ["amount_differs"]

    stripe.edit_object("transfers", row.transfer_id, amount=row.amount)
    reconcile(app)
    assert open_findings() == []


def test_currency_differs_is_amount_differs(app, stripe, world):
    row = db.session.execute(select(StripePayout).limit(1)).scalar_one()
    stripe.edit_object("payouts", row.payout_id, currency="usd")

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("amount_differs", "payout")
    assert (finding.currency, finding.their_currency) == ("eur", "usd")


def test_transfer_reversed_in_the_dashboard_is_state_differs(app, stripe, world):
    row = order_transfer()
    reversal = stripe.reverse_in_dashboard(row.transfer_id, amount=500)

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("state_differs", "transfer")
    assert (finding.operation_id, finding.stripe_id, finding.their_amount) == (
        row.id,
        reversal["id"],
        500,
    )
    assert mismatches() == []


def test_failed_payout_created_here_is_state_differs(app, stripe, world):
    row = db.session.execute(select(StripePayout).limit(1)).scalar_one()
    stripe.fail_payout(row.payout_id)

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation, finding.stripe_id) == (
        "state_differs",
        "payout",
        row.payout_id,
    )


def test_payout_made_by_hand_is_unknown_to_us(app, stripe, world):
    payout = stripe.payout_by_hand(world, 1234)

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("unknown_to_us", "payout")
    assert (finding.stripe_id, finding.stripe_account_id, finding.their_amount) == (
        payout["id"],
        world,
        1234,
    )
    assert finding.operation_id is None


def test_refund_in_the_dashboard_of_our_charge_is_unknown_to_us(app, stripe, world):
    charge = order_transfer("W-0002-A").transaction_id
    refund = stripe.refund_in_dashboard(charge, amount=300)

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation, finding.stripe_id) == (
        "unknown_to_us",
        "refund",
        refund["id"],
    )
    assert "by hand" in finding.detail


def test_refund_of_a_charge_we_do_not_know_is_none_of_our_business(app, stripe, world):
    charge = stripe.create_charge(amount=1000, currency="eur")["id"]
    stripe.refund_in_dashboard(charge)

    reconcile(app)

    assert open_findings() == []


def test_order_refunded_in_mirakl_without_reversal_here_is_state_differs(app, mirakl, world):
    row = order_transfer()
    order = make_product_order("W-0001-A", refunds=[make_refund_line("7777", state="REFUNDED")])
    mirakl.patch_order("W-0001-A", order_lines=order["order_lines"])

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("state_differs", "transfer")
    assert (finding.operation_id, finding.mirakl_id) == (row.id, "7777")


def test_refund_not_confirmed_to_mirakl_is_mirakl_not_told(app, mirakl, world):
    refund = db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == "9004")
    ).scalar_one()
    assert refund.status == "REFUND_CREATED"
    waiting = make_product_order("W-0004-A", refunds=[make_refund_line("9004")])
    mirakl.patch_order("W-0004-A", order_lines=waiting["order_lines"])

    reconcile(app)

    finding = the_finding()
    assert (finding.finding_class, finding.operation) == ("mirakl_not_told", "refund")
    assert (finding.operation_id, finding.stripe_id) == (refund.id, refund.stripe_refund_id)
    assert mismatches() == []


def test_deleted_reversal_row_shows_the_stripe_reversal_as_unknown(app, stripe, world):
    """A restore from backup lost a reversal row: its Stripe reversal has no owner, and the
    order Mirakl refunded has no reversal here."""
    db.session.execute(
        delete(StripeTransfer).where(
            StripeTransfer.type == TransferType.REFUND.value, StripeTransfer.mirakl_id == "9004"
        )
    )
    db.session.commit()

    reconcile(app)

    assert sorted(open_findings()) == [("state_differs", "transfer"), ("unknown_to_us", "reversal")]


# ---------------------------------------------------------------- console and digest


def test_console_lists_findings_with_links_and_what_to_do(app, stripe, world):
    from webapp.services.access.users import create_user

    row = order_transfer()
    stripe.edit_object("transfers", row.transfer_id, amount=row.amount - 1)
    reconcile(app)
    create_user("ops@example.com", "correct horse battery")
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(
        "/console/login",
        data={"email": "ops@example.com", "password": "correct horse battery", "csrf_token": token},
    )

    listing = client.get("/console/reconciliation/")

    html = listing.get_data(as_text=True)
    assert listing.status_code == 200
    assert "amount_differs" in html and "W-0001-A" in html
    assert f"/console/transfers/details/?id={row.id}" in html
    assert "Compare the two amounts" in html
    detail = client.get(f"/console/reconciliation/details/?id={the_finding().id}")
    assert detail.status_code == 200 and row.transfer_id in detail.get_data(as_text=True)
    # Read-only: no create, edit or delete.
    assert client.get("/console/reconciliation/new/").status_code in (302, 403, 404)


def test_digest_has_a_reconciliation_section(make_app, stripe, mirakl, smtp):
    application = make_app(**FLAGS, MAILER_DSN=smtp.dsn, TECHNICAL_ALERT_EMAIL="ops@example.com")
    with application.app_context():
        acct = seller(stripe)
        stripe.payout_by_hand(acct, 1234)
        stripe.payout_by_hand(acct, 1000)
        reconcile(application)

        lines = cli(application, "notify-failed-operation")

    assert lines == [
        "failed operations: 0 transfers, 0 refunds, 0 payouts, 2 reconciliation findings, "
        "digest e-mailed"
    ]
    [message] = smtp.messages
    text = message.get_body(("plain",)).get_content()
    assert "Reconciliation (2 open findings)" in text
    assert "unknown_to_us: 2" in text
    assert "EUR: ours 0.00 EUR, Stripe 22.34 EUR" in text
    assert "/console/reconciliation/" in text
