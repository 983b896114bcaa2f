"""The Mirakl sandbox over real HTTP: endpoints, both paginations, control API and faults."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.demo import (
    make_invoice,
    make_order_line,
    make_product_order,
    make_refund_line,
    make_service_debit,
    make_service_order,
    make_service_refund,
    make_shop,
)
from sandbox.servers import ServerHandle

AUTH = {"Authorization": "operator-key"}


class Api:
    """Minimal operator-API client for the tests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers.update(AUTH)

    def get(self, path: str, params: Any = None) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=10)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(self.url + path, json=body, timeout=10)

    def follow_links(self, path: str, params: Any, key: str) -> list[list[dict[str, Any]]]:
        """Offset pagination as the connector does it: follow ``Link`` verbatim."""
        response = self.get(path, params)
        pages = []
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            items = body[key] if key != "orders.order" else body["orders"]["order"]
            pages.append(items)
            link = response.links.get("next")
            if not link:
                return pages
            response = self.session.get(link["url"], timeout=10)

    def follow_tokens(self, path: str, params: Any) -> list[list[dict[str, Any]]]:
        """Seek pagination as the connector does it: only ``page_token`` on follow-ups."""
        response = self.get(path, params)
        pages = []
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            pages.append(body["data"])
            if "next_page_token" not in body:
                return pages
            response = self.get(path, {"page_token": body["next_page_token"]})


@pytest.fixture
def api(mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl) -> Api:
    return Api(mirakl_sandbox.url)


# --- auth, version, request log -------------------------------------------------------------


def test_version_and_auth(
    mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl, api: Api
) -> None:
    assert api.get("/api/version").json() == {"version": "3.210.0"}

    missing = requests.get(mirakl_sandbox.url + "/api/version", timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {"message": "Unauthorized", "status": 401}

    mirakl_control.set_api_key("secret")
    assert api.get("/api/version").status_code == 401
    ok = requests.get(
        mirakl_sandbox.url + "/api/version", headers={"Authorization": "secret"}, timeout=10
    )
    assert ok.status_code == 200

    mirakl_control.set_api_key(None)
    assert api.get("/api/version").status_code == 200


def test_unknown_api_path_is_json_404(api: Api) -> None:
    response = api.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found", "status": 404}


def test_request_log(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_shops([make_shop(1)])
    api.get("/api/shops", [("shop_ids", "1"), ("domains", "PRODUCT,SERVICE")])
    api.put("/api/shops", {"shops": [{"shop_id": 1, "kyc": {"status": "APPROVED"}}]})
    requests.get(mirakl_control.url + "/api/version", timeout=10)  # 401, logged too

    log = mirakl_control.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/api/shops", 200),
        ("PUT", "/api/shops", 200),
        ("GET", "/api/version", 401),
    ]
    assert log[0]["query"] == {"shop_ids": ["1"], "domains": ["PRODUCT,SERVICE"]}
    assert log[0]["body"] is None
    assert log[1]["body"] == {"shops": [{"shop_id": 1, "kyc": {"status": "APPROVED"}}]}
    assert log[1]["at"].endswith("Z")
    assert [e["method"] for e in mirakl_control.requests(path="/api/shops")] == ["GET", "PUT"]
    assert len(mirakl_control.requests(method="put")) == 1

    mirakl_control.clear_requests()
    assert mirakl_control.requests() == []


def test_path_prefix_is_accepted(
    mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl
) -> None:
    mirakl_control.add_orders([make_product_order(f"P-{i}-A") for i in range(3)])
    response = requests.get(
        mirakl_sandbox.url + "/mirakl/api/orders", params={"max": 2}, headers=AUTH, timeout=10
    )
    assert response.status_code == 200
    assert response.links["next"]["url"] == f"{mirakl_sandbox.url}/mirakl/api/orders?max=2&offset=2"
    assert mirakl_control.requests()[0]["path"] == "/api/orders"


# --- OR11 and offset pagination -------------------------------------------------------------


def _minute(base: str, minutes: int, millis: bool = False) -> str:
    """``base`` (UTC) plus ``minutes``, in Mirakl's product or MMS (``millis``) format."""
    moment = datetime.fromisoformat(base) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (".000Z" if millis else "Z")


def _orders(count: int, prefix: str = "ORD") -> list[dict[str, Any]]:
    return [
        make_product_order(f"{prefix}-{i:04d}-A", created_date=_minute("2024-01-01T00:00", i))
        for i in range(count)
    ]


def test_or11_offset_pagination_follows_link(mirakl_control: MiraklControl, api: Api) -> None:
    orders = _orders(250)
    shuffled = orders[:]
    random.Random(7).shuffle(shuffled)
    mirakl_control.add_orders(shuffled)

    first = api.get("/api/orders", {"max": 100})
    assert first.json()["total_count"] == 250
    assert first.headers["Link"] == f'<{api.url}/api/orders?max=100&offset=100>; rel="next"'

    pages = api.follow_links("/api/orders", {"max": 100}, "orders")
    assert [len(page) for page in pages] == [100, 100, 50]
    received = [order["order_id"] for page in pages for order in page]
    assert received == [order["order_id"] for order in orders]  # created_date ascending


def test_or11_link_keeps_filters(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders(_orders(30))
    # ORD-0010-A is created at 2024-01-01T00:10:00Z = 01:10:00+01:00
    params = {"start_date": "2024-01-01T01:10:00+0100", "max": 8}
    first = api.get("/api/orders", params)
    assert first.json()["total_count"] == 20
    assert "start_date=2024-01-01T01:10:00%2B0100" in first.links["next"]["url"]

    pages = api.follow_links("/api/orders", params, "orders")
    assert [len(page) for page in pages] == [8, 8, 4]
    ids = [order["order_id"] for page in pages for order in page]
    assert ids[0] == "ORD-0010-A" and ids[-1] == "ORD-0029-A"


def test_or11_id_filters_and_limits(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders(_orders(5))
    by_id = api.get("/api/orders", {"order_ids": "ORD-0001-A,ORD-0003-A"}).json()
    assert [o["order_id"] for o in by_id["orders"]] == ["ORD-0001-A", "ORD-0003-A"]
    by_commercial = api.get("/api/orders", {"commercial_ids": "ORD-0004"}).json()
    assert [o["order_id"] for o in by_commercial["orders"]] == ["ORD-0004-A"]

    too_many = ",".join(f"o{i}" for i in range(101))
    response = api.get("/api/orders", {"order_ids": too_many})
    assert response.status_code == 400
    assert response.json() == {
        "message": "The limit of 100 is exceeded for the parameter : order_ids",
        "status": 400,
    }
    response = api.get("/api/orders", {"commercial_ids": too_many})
    assert response.json()["message"].endswith("parameter : commercial_ids")
    assert api.get("/api/orders", {"order_ids": too_many.rsplit(",", 1)[0]}).status_code == 200
    assert api.get("/api/orders", {"max": 101}).status_code == 400
    assert api.get("/api/orders", {"start_date": "yesterday"}).status_code == 400


def test_product_order_shape(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders([make_product_order("ORD-1-A", transaction_number="ch_1")])
    order = api.get("/api/orders").json()["orders"][0]
    assert order["commercial_id"] == "ORD-1"
    assert order["total_price"] == 69.12 and order["total_commission"] == 3.99
    assert order["customer"] == {"customer_id": "customer_basic"}
    assert order["customer_debited_date"] == "2024-01-02T10:00:00Z"
    assert order["transaction_number"] == "ch_1"
    line1, line2 = order["order_lines"]
    assert line1["order_line_id"] == "ORD-1-A-1" and line1["total_price"] == 12.34
    assert line1["shipping_taxes"] == [
        {"amount": 1.12, "code": "ECO_TAX"},
        {"amount": 1.34, "code": "EXP_TAX"},
    ]
    assert [t["amount"] for t in line2["taxes"]] == [2.56, 2.78]


def test_malformed_items_are_served_as_given(mirakl_control: MiraklControl, api: Api) -> None:
    broken = {
        "order_id": "BAD-1",
        "order_state": "WAITING_DEBIT_PAYMENT",
        "total_price": "not-a-number",
        "order_lines": "oops",
        "customer": None,
    }
    mirakl_control.add_orders([broken, {"order_state": "SHIPPING", "created_date": 12}])
    mirakl_control.add_shops([{"shop_name": "no id"}])

    orders = api.get("/api/orders").json()
    assert orders["total_count"] == 2
    assert broken in orders["orders"]
    debit = api.get("/api/payment/debit").json()["orders"]["order"]
    assert debit == [
        {
            "order_id": "BAD-1",
            "order_commercial_id": None,
            "customer_id": None,
            "shop_id": None,
            "amount": "not-a-number",
            "currency_iso_code": None,
            "payment_workflow": None,
            "order_lines": {"order_line": []},
        }
    ]
    assert api.get("/api/payment/refund").json() == {"orders": {"order": [], "total_count": 0}}
    assert api.get("/api/shops").json()["shops"] == [{"shop_name": "no id"}]


# --- S20 / S07 ------------------------------------------------------------------------------


def test_s20_filters_and_pagination(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_shops(
        [make_shop(i, last_updated_date=f"2024-02-{i:02d}T10:00:00Z") for i in range(1, 26)]
    )
    all_pages = api.follow_links("/api/shops", {"domains": "PRODUCT,SERVICE", "max": 10}, "shops")
    assert [len(page) for page in all_pages] == [10, 10, 5]

    recent = api.get("/api/shops", {"updated_since": "2024-02-20T10:00:00Z"}).json()
    assert recent["total_count"] == 6
    assert [shop["shop_id"] for shop in recent["shops"]] == [20, 21, 22, 23, 24, 25]

    chosen = api.get("/api/shops", {"shop_ids": "3,17"}).json()
    assert [shop["shop_id"] for shop in chosen["shops"]] == [3, 17]

    unpaginated = api.get("/api/shops", {"paginate": "false"})
    assert len(unpaginated.json()["shops"]) == 25
    assert "Link" not in unpaginated.headers

    too_many = api.get("/api/shops", {"shop_ids": ",".join(str(i) for i in range(101))})
    assert too_many.status_code == 400
    assert too_many.json()["message"].endswith("parameter : shop_ids")
    assert api.get("/api/shops", {"max": 101}).status_code == 400


def test_s07_patch_semantics_and_per_shop_errors(mirakl_control: MiraklControl, api: Api) -> None:
    fields = [
        {"code": "stripe-url", "type": "LINK", "value": "https://old"},
        {"code": "other", "type": "STRING", "value": "keep"},
    ]
    mirakl_control.add_shops([make_shop(1, shop_additional_fields=fields), make_shop(2)])
    mirakl_control.fail_s07([2])

    response = api.put(
        "/api/shops",
        {
            "shops": [
                {
                    "shop_id": 1,
                    "shop_additional_fields": [
                        {"code": "stripe-url", "value": "https://new"},
                        {"code": "stripe-ignored", "value": "true"},
                    ],
                },
                {"shop_id": 999, "kyc": {"status": "APPROVED"}},
                {"shop_id": 2, "kyc": {"status": "APPROVED", "reason": ""}},
            ]
        },
    )
    assert response.status_code == 200
    updated, missing, failed = response.json()["shop_returns"]
    shop = updated["shop_updated"]
    assert shop["shop_additional_fields"] == [
        {"code": "stripe-url", "type": "LINK", "value": "https://new"},
        {"code": "other", "type": "STRING", "value": "keep"},
        {"code": "stripe-ignored", "type": "STRING", "value": "true"},
    ]
    assert shop["kyc"] == {"status": "PENDING_SUBMISSION", "reason": None}  # untouched
    assert shop["last_updated_date"] > "2024-01-02T10:00:00Z"
    assert missing["shop_error"]["shop_id"] == 999
    assert missing["shop_error"]["errors"][0]["code"] == "SHOP_NOT_FOUND"
    assert failed["shop_error"]["shop_id"] == 2

    state = {s["shop_id"]: s for s in mirakl_control.state()["shops"]}
    assert state[1]["shop_additional_fields"][0]["value"] == "https://new"
    assert state[2]["kyc"]["status"] == "PENDING_SUBMISSION"
    assert state[2]["last_updated_date"] == "2024-01-02T10:00:00Z"

    mirakl_control.fail_s07([])
    kyc = api.put("/api/shops", {"shops": [{"shop_id": 2, "kyc": {"status": "APPROVED"}}]})
    assert kyc.json()["shop_returns"][0]["shop_updated"]["kyc"]["status"] == "APPROVED"
    since = api.get("/api/shops", {"updated_since": "2024-06-01T00:00:00Z"}).json()
    assert sorted(s["shop_id"] for s in since["shops"]) == [1, 2]

    assert api.put("/api/shops", {"nope": []}).status_code == 400


# --- PA11 / PA01 ----------------------------------------------------------------------------


def test_pa11_then_pa01_ok_moves_order_to_shipping(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders(
        [
            make_product_order("C1-A", state="WAITING_DEBIT_PAYMENT", shop_id=1),
            make_product_order(
                "C1-B",
                state="WAITING_DEBIT_PAYMENT",
                shop_id=2,
                tax_mode="TAX_INCLUDED",
                created_date="2024-01-03T10:00:00Z",
            ),
            make_product_order("C2-A", state="SHIPPING"),
        ]
    )
    debits = api.get("/api/payment/debit").json()["orders"]
    assert debits["total_count"] == 2
    first, second = debits["order"]
    assert {k: first[k] for k in ("order_id", "order_commercial_id", "customer_id", "shop_id")} == {
        "order_id": "C1-A",
        "order_commercial_id": "C1",
        "customer_id": "customer_basic",
        "shop_id": 1,
    }
    assert first["amount"] == 84.72  # 69.12 + 15.60 taxes (tax excluded)
    assert second["amount"] == 69.12  # tax included
    assert first["currency_iso_code"] == "EUR"
    assert first["payment_workflow"] == "PAY_ON_ACCEPTANCE"

    ok = api.put(
        "/api/payment/debit",
        {
            "orders": [
                {
                    "order_id": "C1-A",
                    "customer_id": "customer_basic",
                    "payment_status": "OK",
                    "amount": 84.72,
                    "transaction_number": "ch_123",
                }
            ]
        },
    )
    assert ok.status_code == 204
    order = api.get("/api/orders", {"order_ids": "C1-A"}).json()["orders"][0]
    assert order["order_state"] == "SHIPPING"
    assert order["customer_debited_date"].startswith("20")
    assert order["transaction_number"] == "ch_123"
    assert [o["order_id"] for o in api.get("/api/payment/debit").json()["orders"]["order"]] == [
        "C1-B"
    ]

    again = api.put(
        "/api/payment/debit",
        {"orders": [{"order_id": "C1-A", "customer_id": "customer_basic", "payment_status": "OK"}]},
    )
    assert again.status_code == 400
    assert "C1-A" in again.json()["message"]


def test_pa01_is_all_or_nothing_and_refused_cancels(
    mirakl_control: MiraklControl, api: Api
) -> None:
    mirakl_control.add_orders([make_product_order("D1-A", state="WAITING_DEBIT_PAYMENT")])
    mixed = api.put(
        "/api/payment/debit",
        {
            "orders": [
                {"order_id": "D1-A", "customer_id": "customer_basic", "payment_status": "OK"},
                {"order_id": "NOPE-A", "customer_id": "customer_basic", "payment_status": "OK"},
            ]
        },
    )
    assert mixed.status_code == 400
    assert mixed.json() == {"message": "Order NOPE-A not found", "status": 400}
    assert mirakl_control.state()["orders"][0]["order_state"] == "WAITING_DEBIT_PAYMENT"

    refused = api.put(
        "/api/payment/debit",
        {
            "orders": [
                {"order_id": "D1-A", "customer_id": "customer_basic", "payment_status": "REFUSED"}
            ]
        },
    )
    assert refused.status_code == 204
    stored = mirakl_control.state()["orders"][0]
    assert stored["order_state"] == "CANCELED"
    assert stored["customer_debited_date"] is None


def test_concurrent_pa01_validates_an_order_once(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders([make_product_order("T1-A", state="WAITING_DEBIT_PAYMENT")])
    body = {
        "orders": [{"order_id": "T1-A", "customer_id": "customer_basic", "payment_status": "OK"}]
    }

    def confirm(_: int) -> int:
        url = api.url + "/api/payment/debit"
        return requests.put(url, json=body, headers=AUTH, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(confirm, range(10)))
    assert statuses == [204] + [400] * 9


def test_pa11_offset_pagination(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders(
        [make_product_order(f"W{i:02d}-A", state="WAITING_DEBIT_PAYMENT") for i in range(25)]
    )
    pages = api.follow_links("/api/payment/debit", {"max": 10}, "orders.order")
    assert [len(page) for page in pages] == [10, 10, 5]
    assert pages[2][-1]["order_id"] == "W24-A"


def test_control_patch_order(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders([make_product_order("E1-A", state="WAITING_ACCEPTANCE")])
    assert api.get("/api/payment/debit").json()["orders"]["total_count"] == 0
    patched = mirakl_control.patch_order(
        "E1-A", order_state="WAITING_DEBIT_PAYMENT", customer_debited_date=None
    )
    assert patched["order_state"] == "WAITING_DEBIT_PAYMENT"
    assert api.get("/api/payment/debit").json()["orders"]["order"][0]["order_id"] == "E1-A"
    with pytest.raises(RuntimeError, match="404"):
        mirakl_control.patch_order("MISSING", order_state="CLOSED")


# --- PA12 / PA02 ----------------------------------------------------------------------------


def test_pa12_then_pa02_validates_refund_once(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_orders(
        [
            make_product_order(
                "R1-A",
                state="CLOSED",
                refunds=[make_refund_line("1000"), make_refund_line("1001", state="REFUNDED")],
            ),
            make_product_order("R2-A", state="CLOSED"),
        ]
    )
    pending = api.get("/api/payment/refund").json()["orders"]
    assert pending["total_count"] == 1
    assert pending["order"][0] == {
        "order_id": "R1-A",
        "order_commercial_id": "R1",
        "shop_id": 1,
        "customer_id": "customer_basic",
        "currency_iso_code": "EUR",
        "amount": 12.34,
        "payment_workflow": "PAY_ON_ACCEPTANCE",
        "order_lines": {
            "order_line": [
                {
                    "order_line_id": "R1-A-1",
                    "order_line_amount": 12.34,
                    "refunds": {"refund": [{"id": "1000", "amount": 12.34}]},
                }
            ]
        },
    }

    body = {
        "refunds": [
            {
                "refund_id": "1000",
                "amount": 12.34,
                "currency_iso_code": "EUR",
                "payment_status": "OK",
                "transaction_number": "re_1",
            }
        ]
    }
    assert api.put("/api/payment/refund", body).status_code == 204
    assert api.get("/api/payment/refund").json()["orders"]["order"] == []
    refund = mirakl_control.state()["orders"][0]["order_lines"][0]["refunds"][0]
    assert refund["state"] == "REFUNDED" and refund["transaction_number"] == "re_1"

    second = api.put("/api/payment/refund", body)
    assert second.status_code == 400
    assert second.json() == {"message": "Refund 1000 is not waiting for payment", "status": 400}
    already = api.put(
        "/api/payment/refund", {"refunds": [{"refund_id": "1001", "payment_status": "OK"}]}
    )
    assert already.status_code == 400
    unknown = api.put(
        "/api/payment/refund", {"refunds": [{"refund_id": "4242", "payment_status": "OK"}]}
    )
    assert unknown.status_code == 400
    assert "4242" in unknown.json()["message"]


# --- SOR11 / SPA11 / SPA12 / SPA02 ----------------------------------------------------------


def test_sor11_seek_pagination_remembers_filters(mirakl_control: MiraklControl, api: Api) -> None:
    orders = [
        make_service_order(
            f"S{i:03d}-A",
            created_date=_minute("2024-03-01T00:00", i, millis=True),
        )
        for i in range(250)
    ]
    shuffled = orders[:]
    random.Random(3).shuffle(shuffled)
    mirakl_control.add_service_orders(shuffled)

    # S020-A is created at 2024-03-01T00:20:00.000Z, so 230 orders match
    params = {"date_created_start": "2024-03-01T00:20:00.000Z", "limit": 100}
    pages = api.follow_tokens("/api/mms/orders", params)
    assert [len(page) for page in pages] == [100, 100, 30]
    ids = [order["id"] for page in pages for order in page]
    assert ids == [order["id"] for order in orders[20:]]

    follow_ups = mirakl_control.requests(path="/api/mms/orders")[1:]
    assert [list(e["query"]) for e in follow_ups] == [["page_token"], ["page_token"]]

    default = api.get("/api/mms/orders").json()
    assert len(default["data"]) == 10 and "next_page_token" in default


def test_sor11_id_filters(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_service_orders(
        [make_service_order("S1-A"), make_service_order("S2-A"), make_service_order("S3-B")]
    )
    by_id = api.get("/api/mms/orders", [("order_id", "S1-A"), ("order_id", "S3-B")]).json()
    assert [o["id"] for o in by_id["data"]] == ["S1-A", "S3-B"]
    assert "next_page_token" not in by_id
    by_commercial = api.get("/api/mms/orders", {"commercial_order_id": "S2"}).json()
    assert [o["id"] for o in by_commercial["data"]] == ["S2-A"]

    too_many = api.get("/api/mms/orders", [("order_id", f"o{i}") for i in range(101)])
    assert too_many.status_code == 400
    assert too_many.json()["message"] == (
        "The limit of 100 is exceeded for the parameter : order_id"
    )
    assert api.get("/api/mms/orders", {"limit": 101}).status_code == 400
    assert api.get("/api/mms/orders", {"page_token": "garbage!"}).status_code == 400

    order = by_id["data"][0]
    assert order["price"]["options"] == [
        {"type": "BOOLEAN", "amount": 1.12},
        {"type": "VALUE_LIST", "values": [{"amount": 1.34}]},
    ]
    assert order["commission"] == {"amount_including_taxes": 3.99}
    assert order["shop"] == {"id": 1} and order["date_created"] == "2024-01-02T10:00:00.000Z"


def test_spa11_debits(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_service_debits(
        [
            make_service_debit("S1-A", transaction_number="ch_1"),
            make_service_debit("S2-A", state="WAITING"),
            make_service_debit("S3-A"),
        ]
    )
    found = api.get("/api/mms/debits", [("order_id", "S1-A"), ("order_id", "S2-A")]).json()
    assert found == {
        "data": [
            {
                "order_id": "S1-A",
                "customer_id": "customer_basic",
                "amount": 12.34,
                "currency_code": "EUR",
                "state": "OK",
                "transaction_number": "ch_1",
            },
            {
                "order_id": "S2-A",
                "customer_id": "customer_basic",
                "amount": 12.34,
                "currency_code": "EUR",
                "state": "WAITING",
            },
        ]
    }
    pages = api.follow_tokens("/api/mms/debits", {"limit": 2})
    assert [len(page) for page in pages] == [2, 1]
    too_many = api.get("/api/mms/debits", [("order_id", f"o{i}") for i in range(101)])
    assert too_many.status_code == 400


def test_spa12_then_spa02(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_service_orders(
        [
            make_service_order(
                "SV1-A",
                refunds=[make_service_refund("2000"), make_service_refund("2001", state="OK")],
            )
        ]
    )
    assert api.get("/api/mms/refunds").json() == {
        "data": [
            {
                "id": "2000",
                "order_id": "SV1-A",
                "amount": 12.34,
                "currency_code": "EUR",
                "state": "WAITING",
            }
        ]
    }
    body = [
        {
            "id": "2000",
            "order_id": "SV1-A",
            "amount": 12.34,
            "currency_code": "EUR",
            "state": "OK",
            "transaction_number": "re_9",
        }
    ]
    assert api.put("/api/mms/refunds", {"refunds": body}).status_code == 400  # bare array only
    assert api.put("/api/mms/refunds", body).status_code == 204
    assert api.get("/api/mms/refunds").json() == {"data": []}
    refund = mirakl_control.state()["service_orders"][0]["refunds"][0]
    assert refund["state"] == "OK" and refund["transaction_number"] == "re_9"

    again = api.put("/api/mms/refunds", body)
    assert again.status_code == 400
    assert again.json()["message"] == "Refund 2000 is not waiting for payment"


def test_spa01_and_control_patches(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_shops([make_shop(5)])
    mirakl_control.add_service_orders([make_service_order("SP-1-A", state="WAITING_DEBIT_PAYMENT")])
    mirakl_control.add_service_debits([make_service_debit("SP-1-A", state="WAITING")])

    shop = mirakl_control.patch_shop(5, shop_state="SUSPENDED")
    assert shop["shop_state"] == "SUSPENDED"
    assert api.get("/api/shops").json()["shops"][0]["shop_state"] == "SUSPENDED"
    order = mirakl_control.patch_service_order("SP-1-A", state="ORDER_ACCEPTED")
    assert api.get("/api/mms/orders").json()["data"][0]["state"] == order["state"]

    body = {
        "orders": [{"order_id": "SP-1-A", "payment_status": "OK", "transaction_number": "ch_7"}]
    }
    assert api.put("/api/mms/debits", body).status_code == 204
    debit = api.get("/api/mms/debits", {"order_id": "SP-1-A"}).json()["data"][0]
    assert debit["state"] == "OK" and debit["transaction_number"] == "ch_7"
    assert api.put("/api/mms/debits", body).status_code == 400


# --- IV01 -----------------------------------------------------------------------------------


def test_iv01_filters_and_paging(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.add_invoices(
        [
            make_invoice(i, shop_id=1 + i % 2, date_created=f"2024-04-{i:02d}T10:00:00Z")
            for i in range(14, 0, -1)
        ]
    )
    everything = api.follow_links("/api/invoices", {"max": 10}, "invoices")
    assert [len(page) for page in everything] == [10, 4]
    assert [inv["invoice_id"] for inv in everything[0]][:3] == [1, 2, 3]

    shop1 = api.get("/api/invoices", {"shop": 1, "start_date": "2024-04-05T00:00:00Z"}).json()
    assert [inv["invoice_id"] for inv in shop1["invoices"]] == [6, 8, 10, 12, 14]
    assert shop1["total_count"] == 5
    invoice = shop1["invoices"][0]
    assert invoice["summary"] == {
        "amount_transferred": 12.34,
        "total_subscription_incl_tax": -9.99,
        "total_other_credits_incl_tax": 56.78,
        "total_other_invoices_incl_tax": -98.76,
    }
    assert invoice["currency_iso_code"] == "EUR" and invoice["id"] == "6"


# --- faults ---------------------------------------------------------------------------------


def test_sequence_answers_429_then_500_then_normal(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.set_faults(sequence=[429, 500, 200], retry_after=2)
    limited = api.get("/api/version")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json() == {"message": "Too Many Requests", "status": 429}
    assert mirakl_control.state()["orders"] == []  # the control API is never faulted
    failed = api.get("/api/version")
    assert failed.status_code == 500
    assert failed.text == "<html><body>Internal error</body></html>"
    assert api.get("/api/version").status_code == 200
    assert api.get("/api/version").status_code == 200
    assert [(e["status"], e["fault"]) for e in mirakl_control.requests()] == [
        (429, 429),
        (500, 500),
        (200, None),
        (200, None),
    ]


def test_rate_limit_and_error_rates_with_path_filter(
    mirakl_control: MiraklControl, api: Api
) -> None:
    mirakl_control.set_faults(rate_limit_rate=1, retry_after=0, paths=["/api/orders"])
    limited = api.get("/api/orders")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "0"
    assert api.get("/api/shops").status_code == 200

    mirakl_control.set_faults(error_rate=0.5, seed=42)
    first_run = [api.get("/api/version").status_code for _ in range(30)]
    mirakl_control.set_faults(error_rate=0.5, seed=42)
    second_run = [api.get("/api/version").status_code for _ in range(30)]
    assert first_run == second_run
    assert set(first_run) == {200, 500}

    mirakl_control.clear_faults()
    assert all(api.get("/api/version").status_code == 200 for _ in range(5))


def test_drop_and_latency(mirakl_control: MiraklControl, api: Api) -> None:
    mirakl_control.set_faults(drop_rate=1)
    with pytest.raises(requests.ConnectionError):
        api.get("/api/version")
    assert mirakl_control.requests()[-1]["fault"] == "drop"
    assert mirakl_control.requests()[-1]["status"] is None

    mirakl_control.set_faults(latency_ms=300)
    started = time.monotonic()
    assert api.get("/api/version").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_invalid_fault_settings_rejected(
    mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl
) -> None:
    response = requests.post(
        mirakl_sandbox.url + "/_sandbox/faults", json={"error_rate": 2}, timeout=10
    )
    assert response.status_code == 400
    response = requests.post(mirakl_sandbox.url + "/_sandbox/faults", json={"bogus": 1}, timeout=10)
    assert response.status_code == 400


# --- demo data and command line -------------------------------------------------------------


def test_demo_builders_reproduce_worked_example() -> None:
    order = make_product_order("X-1-A", state="WAITING_DEBIT_PAYMENT")
    assert order["total_price"] == 69.12 and order["customer_debited_date"] is None
    refused = make_product_order(
        "X-2-A",
        state="CLOSED",
        lines=[
            make_order_line("X-2-A-1", "12.34", "CLOSED"),
            make_order_line("X-2-A-2", "56.78", "REFUSED"),
        ],
    )
    assert refused["total_price"] == 12.34
    service = make_service_order("SX-1-A", refunds=[make_service_refund(7)])
    assert service["commercial_order_id"] == "SX-1"
    assert service["price"]["taxes"] == [
        {"amount": 1.56, "code": "ECO_TAX"},
        {"amount": 1.78, "code": "EXP_TAX"},
    ]
    assert service["refunds"][0]["commission"] == {"amount_including_taxes": 1.23}
    assert "shop_id" not in make_invoice(1, shop_id=None)


def test_command_line_serves_demo_data() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.mirakl",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--demo",
            "--api-key",
            "k",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                response = requests.get(
                    url + "/api/payment/debit", headers={"Authorization": "k"}, timeout=2
                )
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("sandbox did not start")
        assert response.json()["orders"]["total_count"] == 2
        assert requests.get(url + "/api/version", headers=AUTH, timeout=2).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
