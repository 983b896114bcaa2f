"""``connector process-payout [MIRAKL_SHOP_ID]`` against the Mirakl and Stripe sandboxes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from sandbox.mirakl.demo import make_invoice, make_shop
from sandbox.stripe.events import sign_payload
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Config,
    Notification,
    OperationEvent,
    StripePayout,
    StripeTransfer,
)
from webapp.services.clients import get_stripe
from webapp.services.payouts import rules as payouts
from webapp.services.payouts import sync as payout_sync

SUB, INV, CRED = "TRANSFER_SUBSCRIPTION", "TRANSFER_EXTRA_INVOICES", "TRANSFER_EXTRA_CREDITS"
INSUFFICIENT = "You have insufficient funds in your Stripe account."


def add_seller(stripe, shop_id: int = 1, *, payouts_enabled: bool = True, mapped: bool = True):
    """A connected account in the Stripe sandbox with 1000.00 EUR available, mapped to a shop."""
    acct = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key=f"test-account-{shop_id}"
    )["id"]
    stripe.set_account(
        acct,
        charges_enabled=True,
        payouts_enabled=payouts_enabled,
        capabilities={"transfers": "active"},
    )
    stripe.set_balance(acct, "eur", 100000)
    stripe.set_balance("platform", "eur", 100000)  # for the invoice's credit transfers
    if mapped:
        map_shop(shop_id, acct, payouts_enabled=payouts_enabled)
    return acct


def map_shop(shop_id: int, acct: str, *, payouts_enabled: bool = True) -> None:
    db.session.add(
        AccountMapping(
            mirakl_shop_id=shop_id,
            stripe_account_id=acct,
            payout_enabled=payouts_enabled,
            payin_enabled=True,
        )
    )
    db.session.commit()


def run(runner, *args: str):
    result = runner.invoke(args=["connector", "process-payout", *args])
    db.session.expire_all()
    return result


def transfers() -> dict[str, StripeTransfer]:
    rows = db.session.execute(select(StripeTransfer).order_by(StripeTransfer.id)).scalars()
    return {f"{r.type}:{r.mirakl_id}": r for r in rows}


def payout(invoice_id: int = 1) -> StripePayout:
    return db.session.execute(
        select(StripePayout).where(StripePayout.mirakl_invoice_id == invoice_id)
    ).scalar_one()


def statuses(invoice_id: int = 1) -> dict[str, tuple]:
    found = {
        r.type: (r.status, r.amount, r.status_reason)
        for key, r in transfers().items()
        if r.mirakl_id == str(invoice_id)
    }
    row = payout(invoice_id)
    found["PAYOUT"] = (row.status, row.amount, row.status_reason)
    return found


def posts(stripe) -> list[dict]:
    return [r for r in stripe.requests(method="POST") if r["path"].startswith("/v1/")]


# ---------------------------------------------------------------- amounts


CREATED = "CREATED"
ZERO = "Amount must be positive, input was: 0"


@pytest.mark.parametrize(
    ("case", "amounts", "expected"),
    [
        (
            "reference invoice",
            ("12.34", "-9.99", "56.78", "-98.76"),
            {"PAYOUT": 1234, SUB: 999, CRED: 5678, INV: 9876},
        ),
        ("all zero", ("0", "0", "0", "0"), {"PAYOUT": 0, SUB: 0, CRED: 0, INV: 0}),
        ("payout only", ("12.34", "0", "0", "0"), {"PAYOUT": 1234, SUB: 0, CRED: 0, INV: 0}),
        ("subscription only", ("0", "-9.99", "0", "0"), {"PAYOUT": 0, SUB: 999, CRED: 0, INV: 0}),
        ("credits only", ("0", "0", "56.78", "0"), {"PAYOUT": 0, SUB: 0, CRED: 5678, INV: 0}),
        (
            "extra invoices only",
            ("0", "0", "0", "-98.76"),
            {"PAYOUT": 0, SUB: 0, CRED: 0, INV: 9876},
        ),
        (
            "negative payout, positive fees",
            ("-12.34", "9.99", "56.78", "98.76"),
            {"PAYOUT": -1234, SUB: 999, CRED: 5678, INV: 9876},
        ),
    ],
)
def test_every_combination_of_amounts(app, runner, mirakl, stripe, case, amounts, expected):
    acct = add_seller(stripe)
    payout_amount, subscription, credits, other = amounts
    mirakl.add_invoices(
        [make_invoice(1, 1, "2024-01-02T10:00:00Z", payout_amount, subscription, credits, other)]
    )
    stripe.clear_requests()

    result = run(runner)

    assert result.exit_code == 0, result.output
    got = statuses()
    for kind, amount in expected.items():
        status, stored, reason = got[kind]
        assert stored == amount, (case, kind)
        if amount > 0:
            assert (status.endswith(CREATED), reason) == (True, None), (case, kind, status)
        else:
            assert status.endswith("ABORTED"), (case, kind, status)
            assert reason == f"Amount must be positive, input was: {amount}", (case, kind)
    platform = get_stripe().platform_account_id()
    sent = sorted(
        (t["metadata"]["connectorType"], t["amount"], t["destination"])
        for t in stripe.objects("transfers")
    )
    expected_transfers = sorted(
        (kind, amount, acct if kind == CRED else platform)
        for kind, amount in expected.items()
        if kind != "PAYOUT" and amount > 0
    )
    assert sent == expected_transfers, case
    paid = [(p["amount"], p["metadata"]["invoiceId"]) for p in stripe.objects("payouts")]
    assert paid == ([(expected["PAYOUT"], "1")] if expected["PAYOUT"] > 0 else []), case
    # Fees are collected and credits paid before the payout of the same invoice.
    paths = [r["path"] for r in posts(stripe)]
    if "/v1/payouts" in paths:
        assert "/v1/transfers" not in paths[paths.index("/v1/payouts") :], paths


def test_reference_invoice_in_stripe(app, runner, mirakl, stripe):
    acct = add_seller(stripe)
    mirakl.add_invoices([make_invoice(1)])

    result = run(runner)

    assert result.exit_code == 0, result.output
    assert "payouts: 1 dispatched, 0 waiting for transfers" in result.output
    (created,) = stripe.objects("payouts")
    assert (created["amount"], created["currency"], created["status"]) == (1234, "eur", "pending")
    assert created["metadata"]["miraklShopId"] == "1"
    assert payout().payout_id == created["id"]
    assert payout().account_mapping.stripe_account_id == acct
    (request,) = stripe.requests("/v1/payouts", method="POST")
    assert request["stripe_account"] == acct
    assert request["idempotency_key"] == "mirakl-connector:payout:1:0"
    fees = [
        r for r in posts(stripe) if r["stripe_account"] == acct and r["path"] == "/v1/transfers"
    ]
    assert sorted(r["params"]["amount"] for r in fees) == ["9876", "999"]
    # 100000 - 999 - 9876 + 5678 - 1234
    assert stripe.balance(acct)["available"][0]["amount"] == 93569


# ---------------------------------------------------------------- holds, aborts and retries


def test_invoice_without_shop_is_aborted(app, runner, mirakl, stripe):
    add_seller(stripe)
    mirakl.add_invoices([make_invoice(1, shop_id=None)])

    assert run(runner).exit_code == 0

    assert statuses() == {
        SUB: ("TRANSFER_ABORTED", 999, "No shop ID provided"),
        INV: ("TRANSFER_ABORTED", 9876, "No shop ID provided"),
        CRED: ("TRANSFER_ABORTED", 5678, "No shop ID provided"),
        "PAYOUT": ("PAYOUT_ABORTED", 1234, "No shop ID provided"),
    }
    assert posts(stripe) == [] or all(r["path"] == "/v1/accounts" for r in posts(stripe))


def test_unknown_shop_is_on_hold_then_paid_once_mapped(app, runner, mirakl, stripe):
    mirakl.add_invoices([make_invoice(1, shop_id=5)])

    assert run(runner).exit_code == 0
    reason = "Cannot find Stripe account for shop ID 5"
    assert statuses() == {
        SUB: ("TRANSFER_ON_HOLD", 999, reason),
        INV: ("TRANSFER_ON_HOLD", 9876, reason),
        CRED: ("TRANSFER_ON_HOLD", 5678, reason),
        "PAYOUT": ("PAYOUT_ON_HOLD", 1234, reason),
    }
    assert stripe.objects("payouts") == []

    acct = add_seller(stripe, 5)
    result = run(runner)

    assert result.exit_code == 0, result.output
    assert {k: v[0] for k, v in statuses().items()} == {
        SUB: "TRANSFER_CREATED",
        INV: "TRANSFER_CREATED",
        CRED: "TRANSFER_CREATED",
        "PAYOUT": "PAYOUT_CREATED",
    }
    assert [p["amount"] for p in stripe.objects("payouts")] == [1234]
    assert payout().account_mapping.stripe_account_id == acct


def test_payouts_disabled_on_hold_then_paid_once_enabled(app, client, runner, mirakl, stripe):
    acct = add_seller(stripe, 3, payouts_enabled=False)
    mirakl.add_shops([make_shop(3)])
    mirakl.add_invoices([make_invoice(1, shop_id=3)])

    assert run(runner).exit_code == 0
    got = statuses()
    assert got["PAYOUT"] == ("PAYOUT_ON_HOLD", 1234, "Payouts are disabled shop ID 3")
    assert {got[k][0] for k in (SUB, INV, CRED)} == {"TRANSFER_CREATED"}
    assert stripe.requests("/v1/payouts", method="POST") == []

    # Stripe enables payouts; the account.updated webhook updates the mapping.
    stripe.set_account(acct, payouts_enabled=True, details_submitted=True)
    event = stripe.events("account.updated")[-1]
    body = json.dumps(event).encode()
    answer = client.post(
        "/api/public/webhook/sellers",
        data=body,
        headers={"Stripe-Signature": sign_payload(body, "whsec_sellers")},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.execute(select(AccountMapping)).scalar_one().payout_enabled is True
    result = run(runner)

    assert result.exit_code == 0, result.output
    assert payout().status == "PAYOUT_CREATED"
    assert payout().status_reason is None
    assert [p["amount"] for p in stripe.objects("payouts")] == [1234]
    assert len(stripe.objects("transfers")) == 3


def test_insufficient_balance_fails_then_paid_next_run(app, runner, mirakl, stripe):
    acct = add_seller(stripe)
    stripe.set_balance(acct, "eur", 1000)
    mirakl.add_invoices([make_invoice(1, subscription="0", other_credits="0", other_invoices="0")])

    assert run(runner).exit_code == 0

    row = payout()
    assert row.status == "PAYOUT_FAILED"
    assert row.status_reason.startswith(INSUFFICIENT)
    assert row.attempt == 1
    (note,) = db.session.execute(select(Notification)).scalars()
    body = json.loads(note.payload)
    assert (note.type, body["miraklInvoiceId"], body["status"]) == (
        "payout.failed",
        1,
        "PAYOUT_FAILED",
    )
    assert body["failedReason"].startswith(INSUFFICIENT)

    stripe.set_balance(acct, "eur", 100000)
    assert run(runner).exit_code == 0

    assert payout().status == "PAYOUT_CREATED"
    assert [p["amount"] for p in stripe.objects("payouts")] == [1234]
    keys = [r["idempotency_key"] for r in stripe.requests("/v1/payouts", method="POST")]
    assert keys == ["mirakl-connector:payout:1:0", "mirakl-connector:payout:1:1"]


def test_fees_are_collected_before_the_payout(app, runner, mirakl, stripe):
    """The seller holds only enough for fees + payout once the credit has arrived."""
    acct = add_seller(stripe)
    # fees 999 + 9876 out, credit 5678 in, payout 1234: needs 6431 at the start.
    stripe.set_balance(acct, "eur", 6431)
    mirakl.add_invoices([make_invoice(1)])
    stripe.clear_requests()

    assert run(runner).exit_code == 0

    assert {v[0] for v in statuses().values()} == {"TRANSFER_CREATED", "PAYOUT_CREATED"}
    paths = [r["path"] for r in posts(stripe)]
    assert paths.count("/v1/transfers") == 3
    assert paths[-1] == "/v1/payouts"
    assert stripe.balance(acct)["available"][0]["amount"] == 0


def test_payout_failed_webhook_then_paid_again_exactly_once(app, client, runner, mirakl, stripe):
    add_seller(stripe)
    mirakl.add_invoices([make_invoice(1)])
    assert run(runner).exit_code == 0
    first = payout().payout_id

    event = stripe.fail_payout(first, "account_closed", "The bank account has been closed.")
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(body, "whsec_sellers")}
    answer = client.post("/api/public/webhook/sellers", data=body, headers=headers)
    db.session.expire_all()

    assert (answer.status_code, answer.get_data(as_text=True)) == (
        200,
        "Payout status updated to failed.",
    )
    row = payout()
    assert (row.status, row.status_reason, row.attempt, row.payout_id) == (
        "PAYOUT_FAILED",
        "account_closed: The bank account has been closed.",
        1,
        first,
    )
    (note,) = db.session.execute(select(Notification)).scalars()
    assert json.loads(note.payload)["stripePayoutId"] == first
    again = client.post("/api/public/webhook/sellers", data=body, headers=headers)
    assert again.status_code == 200
    assert db.session.execute(select(func.count(Notification.id))).scalar_one() == 1

    assert run(runner).exit_code == 0
    row = payout()
    assert row.status == "PAYOUT_CREATED"
    assert row.payout_id not in (None, first)
    keys = [r["idempotency_key"] for r in stripe.requests("/v1/payouts", method="POST")]
    assert keys == ["mirakl-connector:payout:1:0", "mirakl-connector:payout:1:1"]

    assert run(runner).exit_code == 0
    assert len(stripe.objects("payouts")) == 2
    assert len(stripe.objects("transfers")) == 3


def test_payout_failed_webhook_for_unknown_payout(app, client):
    from sandbox.stripe.events import make_event

    event = make_event("payout.failed", {"id": "po_unknown", "object": "payout"}, "acct_x")
    body = json.dumps(event).encode()
    answer = client.post(
        "/api/public/webhook/sellers",
        data=body,
        headers={"Stripe-Signature": sign_payload(body, "whsec_sellers")},
    )

    assert (answer.status_code, answer.get_data(as_text=True)) == (
        200,
        "Ignoring payout.failed event for unknown payout.",
    )


def test_lost_payout_outcome_is_found_in_stripe_not_sent_twice(make_app, mirakl, stripe):
    app = make_app(PENDING_RECHECK_AFTER="0")
    with app.app_context():
        runner = app.test_cli_runner()
        add_seller(stripe)
        mirakl.add_invoices([make_invoice(1, subscription="0", other_credits="0")])
        stripe.set_faults(after_rate=1.0, paths=["/v1/payouts"], methods=["POST"], max_faults=1)

        assert run(runner).exit_code == 0
        row = payout()
        assert row.status == "PAYOUT_PENDING"
        assert row.status_reason.startswith("Outcome unknown, will be checked")
        (made,) = stripe.objects("payouts")

        assert run(runner).exit_code == 0
        assert (payout().status, payout().payout_id) == ("PAYOUT_CREATED", made["id"])
        assert len(stripe.objects("payouts")) == 1
        assert len(stripe.requests("/v1/payouts", method="POST")) == 1


# ---------------------------------------------------------------- runs


def test_one_shop_run(app, runner, mirakl, stripe):
    add_seller(stripe, 1)
    add_seller(stripe, 2)
    mirakl.add_invoices([make_invoice(1, shop_id=1), make_invoice(2, shop_id=2)])

    result = run(runner, "2")

    assert result.exit_code == 0, result.output
    assert {r.mirakl_id for r in transfers().values()} == {"2"}
    assert payout(2).status == "PAYOUT_CREATED"
    assert db.session.execute(select(func.count(StripePayout.id))).scalar_one() == 1
    (request,) = mirakl.requests("/api/invoices")
    assert request["query"].get("shop") in ("2", ["2"])
    checkpoint = db.session.execute(select(Config.value)).scalars().all()
    assert checkpoint in ([], [None])


def test_shop_id_must_be_numeric(app, runner):
    result = runner.invoke(args=["connector", "process-payout", "abc"])

    assert result.exit_code == 2
    assert "'abc' is not a valid integer" in result.output


def test_rerun_does_nothing_new(app, runner, mirakl, stripe):
    add_seller(stripe)
    mirakl.add_invoices([make_invoice(1), make_invoice(2, date_created="2024-01-03T10:00:00Z")])
    assert run(runner).exit_code == 0
    sent = len(posts(stripe))
    events = db.session.execute(select(func.count(OperationEvent.id))).scalar_one()

    result = run(runner)

    assert result.exit_code == 0, result.output
    assert len(posts(stripe)) == sent
    assert db.session.execute(select(func.count(OperationEvent.id))).scalar_one() == events
    assert "invoice transfers: 0 dispatched" in result.output
    assert "payouts: 0 dispatched" in result.output
    assert len(stripe.objects("payouts")) == 2


def test_checkpoint_is_the_newest_stored_invoice_and_all_pages_are_read(
    app, runner, mirakl, stripe
):
    # 105 invoices of a shop without account: two IV01 pages, no Stripe call.
    invoices = [
        make_invoice(i, shop_id=9, date_created=f"2024-02-{1 + i // 24:02d}T{i % 24:02d}:00:00Z")
        for i in range(1, 106)
    ]
    mirakl.add_invoices(list(reversed(invoices)))

    assert run(runner).exit_code == 0

    assert db.session.execute(select(func.count(StripePayout.id))).scalar_one() == 105
    assert payouts.CHECKPOINT == "seller_settlement_checkpoint"
    stored = db.session.execute(select(Config.value)).scalar_one()
    assert stored == "2024-02-05T09:00:00Z"  # invoice 105

    mirakl.add_invoices([make_invoice(106, shop_id=9, date_created="2024-03-01T00:00:00Z")])
    mirakl.clear_requests()
    assert run(runner).exit_code == 0

    queries = [r["query"] for r in mirakl.requests("/api/invoices")]
    assert any(str(q.get("start_date")).strip("[]'") == "2024-02-05T09:00:00Z" for q in queries)
    assert db.session.execute(select(Config.value)).scalar_one() == "2024-03-01T00:00:00Z"
    assert payout(106).status_reason == "Cannot find Stripe account for shop ID 9"


def test_backlog_row_whose_invoice_disappeared_gets_a_reason(app, runner, mirakl, stripe):
    mirakl.add_invoices([make_invoice(1, shop_id=5), make_invoice(2, shop_id=5)])
    assert run(runner).exit_code == 0
    mirakl.reset()
    mirakl.add_invoices([make_invoice(2, shop_id=5)])
    add_seller(stripe, 5)

    result = run(runner)

    assert result.exit_code == 0, result.output
    assert payout(1).status == "PAYOUT_ON_HOLD"
    assert payout(1).status_reason == "Invoice 1 is no longer returned by Mirakl (IV01)"
    assert transfers()[f"{SUB}:1"].status_reason == payout(1).status_reason
    assert payout(2).status == "PAYOUT_CREATED"


def test_retry_functions_return_the_rows_now_pending(app, mirakl, stripe):
    mirakl.add_invoices([make_invoice(1, shop_id=5)])
    payout_sync.sync_invoices()
    on_hold = [t.id for t in transfers().values()]
    payout_id = payout().id
    assert payout_sync.retry_payouts([payout_id], actor="operator@example.com") == []

    add_seller(stripe, 5)

    assert sorted(payout_sync.retry_invoice_transfers(on_hold, actor="operator@example.com")) == (
        sorted(on_hold)
    )
    assert payout_sync.retry_payouts([payout_id], actor="operator@example.com") == [payout_id]
    actors = db.session.execute(
        select(OperationEvent.actor).where(OperationEvent.to_status == "PAYOUT_PENDING")
    ).scalars()
    assert list(actors) == ["operator@example.com"]
    # A row that is not FAILED/ON_HOLD is never retried.
    assert payout_sync.retry_payouts([payout_id], actor="operator@example.com") == []


def test_queued_mode_sends_credit_then_fees_then_payout_in_one_go(app, mirakl, stripe):
    """With RQ, only the credit is queued at first: its money job queues the invoice's fees
    once it is done, and the last transfer's job the payout (no fee before the credit that
    funds it, no payout left for the next daily run)."""
    from rq import SimpleWorker

    from webapp.jobs import process_payout
    from webapp.jobs.runner import run_job
    from webapp.services.queueing.queues import MONEY_QUEUE, get_queue, get_redis

    add_seller(stripe)
    mirakl.add_invoices([make_invoice(1)])

    first, ctx = run_job(process_payout.NAME, process_payout.run, trigger="scheduler", inline=False)

    assert first.outcome == "succeeded", first.error
    assert "invoice transfers: 1 dispatched" in ctx.lines
    assert "payouts: 0 dispatched, 1 waiting for transfers" in ctx.lines
    queued = {t.type: t.queued_at is not None for t in transfers().values()}
    assert queued == {CRED: True, SUB: False, INV: False}

    SimpleWorker([get_queue(MONEY_QUEUE)], connection=get_redis()).work(burst=True)
    db.session.expire_all()

    assert {t.status for t in transfers().values()} == {"TRANSFER_CREATED"}
    assert payout().status == "PAYOUT_CREATED"
    assert [p["amount"] for p in stripe.objects("payouts")] == [1234]
    posts = [
        r["stripe_account"] is None  # platform → seller: the credit
        for r in stripe.requests(path_prefix="/v1/transfers", method="POST")
    ]
    assert posts == [True, False, False]
    payout_post = stripe.requests(path_prefix="/v1/payouts", method="POST")
    last_transfer = stripe.requests(path_prefix="/v1/transfers", method="POST")[-1]
    assert float(payout_post[0]["at"]) >= float(last_transfer["at"])

    second, ctx = run_job(
        process_payout.NAME, process_payout.run, trigger="scheduler", inline=False
    )
    assert not any(line.startswith("invoice transfers: 1") for line in ctx.lines)
    assert len(stripe.objects("payouts")) == 1


def test_a_fee_waits_while_its_invoice_credit_is_pending(app, runner, mirakl, stripe):
    """Inline too: a credit whose outcome is unknown (still PENDING) holds back its fees."""
    add_seller(stripe)
    mirakl.add_invoices([make_invoice(1)])
    stripe.set_faults(after_rate=1.0, paths=["/v1/transfers"], methods=["POST"], max_faults=1)

    result = run(runner)

    assert result.exit_code == 0, result.output
    status_of = {t.type: t.status for t in transfers().values()}
    assert status_of == {CRED: "TRANSFER_PENDING", SUB: "TRANSFER_PENDING", INV: "TRANSFER_PENDING"}
    posts = stripe.requests(path_prefix="/v1/transfers", method="POST")
    assert [r["stripe_account"] for r in posts] == [None]  # the credit only
    assert payout().status == "PAYOUT_PENDING"


def test_unreadable_invoice_is_on_hold_and_the_others_go_on(app, runner, mirakl, stripe):
    add_seller(stripe)
    bad = make_invoice(7, date_created="2024-01-01T10:00:00Z", summary={"amount_transferred": "x"})
    mirakl.add_invoices([bad, make_invoice(1)])

    result = run(runner)

    assert result.exit_code == 0, result.output
    assert "1 unreadable" in result.output
    row = payout(7)
    assert row.status == "PAYOUT_ON_HOLD"
    assert row.status_reason.startswith("Invoice 7 could not be read from Mirakl: ")
    assert "amount_transferred" in row.status_reason
    assert (row.mirakl_shop_id, str(row.mirakl_created_date)) == (1, "2024-01-01 10:00:00")
    assert payout(1).status == "PAYOUT_CREATED"

    # Fixed in Mirakl: the backlog reads it again and pays it.
    mirakl.add_invoices([make_invoice(7, date_created="2024-01-01T10:00:00Z")])
    assert run(runner).exit_code == 0
    assert payout(7).status == "PAYOUT_CREATED"
    assert len(stripe.objects("payouts")) == 2


def test_mirakl_down_fails_the_run_and_keeps_the_checkpoint(app, runner, mirakl, stripe):
    mirakl.add_invoices([make_invoice(1, shop_id=5)])
    mirakl.set_faults(error_rate=1.0, paths=["/api/invoices"])

    result = run(runner)

    assert result.exit_code == 1
    assert "process-payout failed" in result.output
    assert db.session.execute(select(func.count(StripePayout.id))).scalar_one() == 0
    assert db.session.execute(select(Config.value)).scalars().all() in ([], [None])


# ---------------------------------------------------------------- 64-bit amounts


@pytest.mark.parametrize(
    ("currency", "amount", "minor_units"),
    [
        ("JPY", "30000000", 30_000_000),  # ¥30M, a zero-decimal currency
        ("KRW", "3000000000", 3_000_000_000),  # ₩3bn: beyond 2**31 - 1 minor units
        ("EUR", "30000000.01", 3_000_000_001),  # €30M: beyond 2**31 - 1 cents
    ],
)
def test_large_payouts_are_paid_not_held(
    app, runner, mirakl, stripe, currency, amount, minor_units
):
    acct = add_seller(stripe)
    stripe.set_balance(acct, currency.lower(), minor_units)
    mirakl.add_invoices(
        [make_invoice(1, amount_transferred=amount, subscription="0", other_credits="0",
                      other_invoices="0", currency=currency)]
    )  # fmt: skip

    result = run(runner)

    assert result.exit_code == 0, result.output
    row = payout()
    assert (row.status, row.amount, row.currency, row.status_reason) == (
        "PAYOUT_CREATED",
        minor_units,
        currency.lower(),
        None,
    )
    assert [(p["amount"], p["currency"]) for p in stripe.objects("payouts")] == [
        (minor_units, currency.lower())
    ]
    available = {b["currency"]: b["amount"] for b in stripe.balance(acct)["available"]}
    assert available[currency.lower()] == 0
