"""The Mirakl client against the Mirakl sandbox over real HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.mirakl import demo
from webapp.errors import MiraklRejected, MiraklUnavailable
from webapp.services.mirakl.client import MiraklClient
from webapp.services.mirakl.types import BadItem, ProductOrder

KEY = "mirakl-operator-key"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(mirakl, mirakl_server, sleeps) -> MiraklClient:
    mirakl.set_api_key(KEY)
    return MiraklClient(
        mirakl_server, KEY, timeout=2, max_retries=3, backoff_base=0.01, sleep=sleeps.append
    )


def orders(count: int, prefix: str = "O") -> list[dict]:
    return [
        demo.make_product_order(
            f"{prefix}-{i:04d}-A", created_date=f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"
        )
        for i in range(count)
    ]


def test_offset_pagination_reads_every_page_of_100(client, mirakl):
    mirakl.add_orders(orders(250))
    result = list(client.list_orders())
    assert len(result) == 250 and all(isinstance(o, ProductOrder) for o in result)
    calls = mirakl.requests(path="/api/orders")
    assert len(calls) == 3
    assert calls[0]["query"]["max"] == ["100"]
    assert client.calls == 3


def test_start_date_filter_and_empty_result(client, mirakl):
    mirakl.add_orders(orders(5))
    assert len(list(client.list_orders(start_date="2024-01-01T00:00:03Z"))) == 2
    assert list(client.list_orders(start_date="2030-01-01T00:00:00Z")) == []


def test_seek_pagination_sends_only_the_token_after_the_first_page(client, mirakl):
    mirakl.add_service_orders(
        [
            demo.make_service_order(
                f"S-{i:04d}-A", date_created=f"2024-01-01T00:00:{i % 60:02d}.000Z"
            )
            for i in range(230)
        ]
    )
    result = list(client.list_service_orders(date_created_start="2023-01-01T00:00:00.000Z"))
    assert len(result) == 230
    calls = mirakl.requests(path="/api/mms/orders")
    assert len(calls) == 3
    assert calls[0]["query"]["limit"] == ["100"]
    assert set(calls[1]["query"]) == {"page_token"}


def test_id_filters_are_batched_by_100(client, mirakl):
    mirakl.add_orders(orders(250))
    ids = [f"O-{i:04d}-A" for i in range(250)] + ["O-0001-A_TAX"]
    found = list(client.list_orders_by_id(ids))
    assert len(found) == 250
    calls = mirakl.requests(path="/api/orders")
    assert len(calls) == 3
    assert all(len(c["query"]["order_ids"][0].split(",")) <= 100 for c in calls)


def test_429_waits_for_retry_after(client, mirakl, sleeps):
    mirakl.add_shops([demo.make_shop(1)])
    mirakl.set_faults(sequence=[429, 429, 200], retry_after=2)
    assert [s.id for s in client.list_shops()] == [1]
    assert sleeps == [2.0, 2.0]


def test_5xx_is_retried_with_backoff_then_succeeds(client, mirakl, sleeps):
    mirakl.add_shops([demo.make_shop(1), demo.make_shop(2)])
    mirakl.set_faults(sequence=[500, 503, 200])
    assert [s.id for s in client.list_shops()] == [1, 2]
    assert len(sleeps) == 2 and all(0 < s <= 0.02 for s in sleeps)


def test_5xx_past_the_retries_is_a_run_level_error(client, mirakl):
    mirakl.set_faults(error_rate=1.0)
    with pytest.raises(MiraklUnavailable) as info:
        list(client.list_orders())
    assert info.value.code == "OR11"
    assert info.value.http_status == 500
    assert "<html>" not in str(info.value)
    assert len(mirakl.requests(path="/api/orders")) == 4  # first try + 3 retries


def test_timeouts_are_retried_then_fail(mirakl, mirakl_server, sleeps):
    slow = MiraklClient(
        mirakl_server, KEY, timeout=0.2, max_retries=1, backoff_base=0.01, sleep=sleeps.append
    )
    mirakl.set_faults(latency_ms=600)
    with pytest.raises(MiraklUnavailable, match="ReadTimeout after 2 tries"):
        list(slow.list_invoices())


def test_4xx_carries_mirakls_message(mirakl, mirakl_server):
    mirakl.set_api_key(KEY)
    wrong = MiraklClient(mirakl_server, "wrong-key", max_retries=0)
    with pytest.raises(MiraklRejected) as info:
        list(wrong.list_shops())
    assert info.value.http_status == 401
    assert "Unauthorized" in str(info.value)


def test_one_bad_item_does_not_hide_the_others(client, mirakl):
    mirakl.add_orders(
        [
            demo.make_product_order("O-1-A"),
            {**demo.make_product_order("O-2-A"), "total_price": "not-a-number"},
            demo.make_product_order("O-3-A", shop_id="shop-three"),
        ]
    )
    result = list(client.list_orders())
    assert [o.id for o in result if isinstance(o, ProductOrder)] == ["O-1-A"]
    bad = [o for o in result if isinstance(o, BadItem)]
    assert [(b.mirakl_id, b.code) for b in bad] == [("O-2-A", "OR11"), ("O-3-A", "OR11")]
    assert "total_price is not a number" in bad[0].reason
    assert "shop_id is not a number" in bad[1].reason


def test_writes_are_not_retried_on_5xx(client, mirakl):
    mirakl.set_faults(sequence=[500])
    with pytest.raises(MiraklUnavailable):
        client.confirm_debits([{"order_id": "O-1-A", "payment_status": "OK"}])
    assert len(mirakl.requests(path="/api/payment/debit", method="PUT")) == 1


def test_pa01_batch_isolates_the_bad_entry(client, mirakl):
    mirakl.add_orders(
        [demo.make_product_order(f"O-{i}-A", state="WAITING_DEBIT_PAYMENT") for i in (1, 2)]
    )
    entries = [
        {
            "order_id": "O-1-A",
            "customer_id": "customer_basic",
            "payment_status": "OK",
            "amount": Decimal("84.72"),
            "transaction_number": "ch_1",
        },
        {
            "order_id": "O-404-A",
            "customer_id": "customer_basic",
            "payment_status": "OK",
            "amount": Decimal(1),
        },
        {
            "order_id": "O-2-A",
            "customer_id": "customer_basic",
            "payment_status": "OK",
            "amount": Decimal("84.72"),
            "transaction_number": "ch_2",
        },
    ]
    errors = client.confirm_debits(entries)
    assert errors[0] is None and errors[2] is None
    assert "O-404-A" in errors[1]
    bodies = [r["body"] for r in mirakl.requests(path="/api/payment/debit", method="PUT")]
    assert len(bodies[0]["orders"]) == 3  # one batch first, then one by one
    assert bodies[1]["orders"][0]["amount"] == 84.72
    states = {o["order_id"]: o["order_state"] for o in mirakl.state()["orders"]}
    assert states == {"O-1-A": "SHIPPING", "O-2-A": "SHIPPING"}


def test_s07_reports_per_shop_errors(client, mirakl):
    mirakl.add_shops([demo.make_shop(1), demo.make_shop(2)])
    mirakl.fail_s07([2])
    patch = [
        {"shop_id": i, "shop_additional_fields": [{"code": "stripe-url", "value": "u"}]}
        for i in (1, 2, 3)
    ]
    results = client.update_shops(patch)
    assert [(r.shop_id, r.error is None) for r in results] == [(1, True), (2, False), (3, False)]
    assert len(mirakl.requests(path="/api/shops", method="PUT")) == 1


def test_pending_refunds_are_flattened(client, mirakl):
    mirakl.add_orders(
        [
            demo.make_product_order(
                "O-1-A",
                refunds=[
                    demo.make_refund_line("R-1", "12.34"),
                    demo.make_refund_line("R-2", "1.00"),
                ],
            )
        ]
    )
    refunds = list(client.list_pending_refunds())
    assert [(r.id, r.order_id, r.amount) for r in refunds] == [
        ("R-1", "O-1-A", Decimal("12.34")),
        ("R-2", "O-1-A", Decimal("1.00")),
    ]


def test_version(client):
    assert client.get_version()
