"""``process-transfer`` reads the charges of a chunk of orders with list calls, not one by one.

Each order's charge is created first, and Mirakl creates the order a second later, as at a real
checkout; the run must then cost one list call per chunk beside its transfers, and decide every
order exactly as the one-by-one retrieve did (refunded, uncaptured, another currency).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from sandbox.mirakl.demo import make_product_order
from webapp.extensions import db
from webapp.models import AccountMapping, StripeTransfer
from webapp.services.clients import get_stripe
from webapp.services.stripe.bulk import (
    FRESH_FOR,
    MIN_BULK,
    REMEMBERED,
    PaymentListing,
    listing_budget,
    window,
)

ORDERS = 12


@pytest.fixture
def split_app(make_app, stripe) -> Iterator[Flask]:
    app = make_app(ENABLE_PRODUCT_PAYMENT_SPLIT="true")  # after the sandbox reset (stripe)
    with app.app_context():
        account = get_stripe().create_account({"type": "express"}, idempotency_key="bulk-acct")
        stripe.ready_account(account["id"])  # onboarded: transfers active
        db.session.add(AccountMapping(mirakl_shop_id=1, stripe_account_id=account["id"]))
        db.session.commit()
        yield app


def order_after(charge: dict, order_id: str, **fields) -> dict:
    """A Mirakl order created one second after its charge, paid by it."""
    created = datetime.fromtimestamp(charge["created"], UTC) + timedelta(seconds=1)
    fields.setdefault("transaction_number", charge["id"])
    return make_product_order(
        order_id, created_date=created.strftime("%Y-%m-%dT%H:%M:%SZ"), **fields
    )


def stripe_calls(stripe) -> list[tuple[str, str]]:
    return [(r["method"], r["path"].split("?")[0]) for r in stripe.requests()]


def statuses() -> dict[str, tuple[str, str | None]]:
    db.session.expire_all()
    return {
        row.mirakl_id: (row.status, row.status_reason)
        for row in db.session.execute(select(StripeTransfer)).scalars()
    }


@pytest.mark.parametrize(
    ("count", "lists"),
    [
        pytest.param(ORDERS, 1, id="one chunk, one list call"),
        # Stripe lists newest first, the pass walks oldest first: each chunk resumes the
        # listing where the previous one stopped instead of paging again through the charges
        # still to come, so three chunks of orders cost three pages of charges.
        pytest.param(250, 3, id="three chunks, each page listed once"),
    ],
)
def test_a_pass_costs_one_list_call_per_page_beside_its_transfers(
    split_app, mirakl, stripe, count, lists
):
    charges = [stripe.create_charge(amount=8472, currency="eur") for _ in range(count)]
    mirakl.add_orders([order_after(c, f"BULK-{i:03d}-A") for i, c in enumerate(charges)])
    stripe.clear_requests()

    result = split_app.test_cli_runner().invoke(args=["connector", "process-transfer"])

    assert result.exit_code == 0, result.output
    calls = stripe_calls(stripe)
    assert calls.count(("GET", "/v1/charges")) == lists
    assert not [c for c in calls if c[0] == "GET" and c[1].startswith("/v1/charges/")]
    assert calls.count(("POST", "/v1/transfers")) == count
    assert len(calls) == count + lists
    assert {status for status, _ in statuses().values()} == {"TRANSFER_CREATED"}


def test_listed_facts_decide_as_the_retrieve_did(split_app, mirakl, stripe):
    good = [stripe.create_charge(amount=8472, currency="eur") for _ in range(MIN_BULK)]
    uncaptured = stripe.create_charge(amount=8472, currency="eur", captured=False)
    other_currency = stripe.create_charge(amount=8472, currency="usd")
    refunded = stripe.create_charge(amount=8472, currency="eur")
    get_stripe().create_refund(refunded["id"], None, metadata={}, idempotency_key="bulk-refund")
    orders = [order_after(c, f"OK-{i}-A") for i, c in enumerate(good)]
    orders += [
        order_after(uncaptured, "UNCAPTURED-A"),
        order_after(other_currency, "USD-A"),
        order_after(refunded, "REFUNDED-A"),
    ]
    mirakl.add_orders(orders)
    stripe.clear_requests()

    split_app.test_cli_runner().invoke(args=["connector", "process-transfer"])

    found = statuses()
    assert found["UNCAPTURED-A"][0] == "TRANSFER_ON_HOLD"
    assert "not captured" in found["UNCAPTURED-A"][1]
    assert found["USD-A"][0] == "TRANSFER_ON_HOLD"
    assert found["REFUNDED-A"][0] == "TRANSFER_ABORTED"
    assert {found[f"OK-{i}-A"][0] for i in range(MIN_BULK)} == {"TRANSFER_CREATED"}
    # Every fact came from the one list call: no charge was retrieved on its own.
    calls = stripe_calls(stripe)
    assert calls.count(("GET", "/v1/charges")) == 1
    assert not [c for c in calls if c[0] == "GET" and c[1].startswith("/v1/charges/")]
    # The refunded charge was never paid out.
    paid_from = {t["source_transaction"] for t in stripe.objects("transfers")}
    assert refunded["id"] not in paid_from


def test_charges_outside_the_window_are_retrieved_one_by_one(split_app, mirakl, stripe):
    charges = [stripe.create_charge(amount=8472, currency="eur") for _ in range(MIN_BULK)]
    # Mirakl dates these orders three days after their charges: the list finds none of them.
    later = [
        make_product_order(
            f"LATE-{i}-A",
            transaction_number=charge["id"],
            created_date=(
                datetime.fromtimestamp(charge["created"], UTC) + timedelta(days=3)
            ).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for i, charge in enumerate(charges)
    ]
    mirakl.add_orders(later)
    stripe.clear_requests()

    split_app.test_cli_runner().invoke(args=["connector", "process-transfer"])

    assert {status for status, _ in statuses().values()} == {"TRANSFER_CREATED"}
    calls = stripe_calls(stripe)
    assert calls.count(("GET", "/v1/charges")) == 1
    assert {("GET", f"/v1/charges/{c['id']}") for c in charges} <= set(calls)
    assert calls.count(("POST", "/v1/transfers")) == MIN_BULK


def test_few_payments_are_retrieved_one_by_one(split_app, mirakl, stripe):
    charges = [stripe.create_charge(amount=8472, currency="eur") for _ in range(MIN_BULK - 1)]
    mirakl.add_orders([order_after(c, f"FEW-{i}-A") for i, c in enumerate(charges)])
    stripe.clear_requests()

    split_app.test_cli_runner().invoke(args=["connector", "process-transfer"])

    calls = stripe_calls(stripe)
    assert ("GET", "/v1/charges") not in calls
    assert len([c for c in calls if c[1].startswith("/v1/charges/")]) == MIN_BULK - 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remembered_payments_expire_after_fresh_for(split_app, stripe):
    """A charge listed for an earlier chunk decides a later one only within ``FRESH_FOR``;
    after that it is listed again, so a refund made meanwhile is seen."""
    charges = [stripe.create_charge(amount=8472, currency="eur") for _ in range(2 * MIN_BULK)]
    created = [datetime.fromtimestamp(c["created"], UTC).replace(tzinfo=None) for c in charges]
    first, second = charges[:MIN_BULK], charges[MIN_BULK:]
    clock = FakeClock()
    with split_app.app_context():
        listing = PaymentListing(get_stripe(), clock=clock)
        stripe.clear_requests()
        found = listing.read([c["id"] for c in first], created)
        assert set(found) == {c["id"] for c in first}
        assert stripe_calls(stripe) == [("GET", "/v1/charges")]

        # Within FRESH_FOR: the second chunk's charges were seen by the first listing.
        clock.now += FRESH_FOR - 1
        stripe.clear_requests()
        assert set(listing.read([c["id"] for c in second], created)) == {c["id"] for c in second}
        assert stripe_calls(stripe) == []

        # Refunded meanwhile, and FRESH_FOR passed since the listing: read again, refunded.
        refunded = second[0]
        get_stripe().create_refund(refunded["id"], None, metadata={}, idempotency_key="exp")
        clock.now += 2
        stripe.clear_requests()
        again = listing.read([c["id"] for c in second], created)
        assert stripe_calls(stripe) == [("GET", "/v1/charges")]
        assert again[refunded["id"]][0]["refunded"] is True
        assert again[second[1]["id"]][0]["refunded"] is False


def test_remembered_payments_keep_only_what_deciding_reads(split_app, stripe):
    charges = [stripe.create_charge(amount=8472, currency="eur") for _ in range(MIN_BULK)]
    created = [datetime.fromtimestamp(c["created"], UTC).replace(tzinfo=None) for c in charges]
    with split_app.app_context():
        listing = PaymentListing(get_stripe())
        found = listing.read([c["id"] for c in charges], created)
    charge, _ = found[charges[0]["id"]]
    assert set(charge) == {"id", "status", "captured", "refunded", "currency"}
    assert len(listing.seen) <= REMEMBERED


def test_window_and_budget() -> None:
    created = [datetime(2026, 1, 2, 12, 0), datetime(2026, 1, 2, 12, 30)]
    gte, lte = window(created)
    assert gte == int(datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp())
    assert lte == int(datetime(2026, 1, 2, 13, 30, tzinfo=UTC).timestamp())
    assert listing_budget(5) == 200
    assert listing_budget(100) == 5000


def test_payment_intents_are_listed_with_their_charges(split_app, mirakl, stripe):
    charges = [
        stripe.create_charge(amount=8472, currency="eur", with_payment_intent=True)
        for _ in range(MIN_BULK)
    ]
    orders = [
        order_after(charge, f"PI-{i}-A", transaction_number=charge["payment_intent"])
        for i, charge in enumerate(charges)
    ]
    mirakl.add_orders(orders)
    stripe.clear_requests()

    split_app.test_cli_runner().invoke(args=["connector", "process-transfer"])

    assert {status for status, _ in statuses().values()} == {"TRANSFER_CREATED"}
    calls = stripe_calls(stripe)
    assert calls.count(("GET", "/v1/payment_intents")) == 1
    assert calls.count(("GET", "/v1/charges")) == 1
    assert len(calls) == MIN_BULK + 2
