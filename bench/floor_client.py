"""The floor: the same Mirakl and Stripe requests as one split run, and nothing else.

A bare client over ``http.client``: no database, no framework, no retries, no pacing. It pages
OR11 by 100, lists the charges as the connector does (one listing, 100 per call, resumed from
page to page) and creates one transfer per order, with as many requests in flight as the
connector's money jobs. Its CPU time is the least any connector could spend on the same work
in Python; ``split_benchmark.py`` divides the connector's CPU per order by it, a ratio that
holds from one machine to the next.

    python bench/floor_client.py MIRAKL_URL STRIPE_URL ACCOUNTS_JSON --concurrency 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

PAGE = 100
WINDOW = 86_400 + 3_600  # seconds around a page's orders where their charges are listed
FLOOR_AMOUNT = 100  # minor units per floor transfer (what is left on each charge)


class Client:
    """One kept-alive connection per thread to one base URL."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self.headers = headers
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        if not hasattr(self.local, "conn"):
            self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.local.conn

    def call(self, method: str, path: str, body: str | None = None, **headers: str) -> Any:
        conn = self._connection()
        all_headers = {**self.headers, **headers}
        if body is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, self.prefix + path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data)


def _epoch(value: str) -> int:
    return int(datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


class Charges:
    """The charges of the run's orders, as the connector reads them: one listing, newest
    first, resumed from page to page of orders, remembering what it passed over."""

    def __init__(self, stripe: Client) -> None:
        self.stripe = stripe
        self.seen: dict[str, dict[str, Any]] = {}
        self.query: dict[str, Any] | None = None
        self.exhausted = False

    def of(self, orders: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        stamps = [_epoch(o["created_date"]) for o in orders]
        wanted = {o["transaction_number"] for o in orders}
        upper = max(stamps) + 3600
        if self.query is None or upper > self.query["created[lte]"]:
            self.query = {"created[gte]": min(stamps) - WINDOW, "created[lte]": upper}
            self.exhausted = False
        while wanted - set(self.seen) and not self.exhausted:
            query = urlencode({**self.query, "limit": PAGE})
            page = self.stripe.call("GET", "/v1/charges?" + query)
            self.seen.update({c["id"]: c for c in page["data"]})
            if not page["has_more"] or not page["data"]:
                self.exhausted = True
            else:
                self.query["starting_after"] = page["data"][-1]["id"]
        return {i: self.seen[i] for i in wanted if i in self.seen}


def transfer(stripe: Client, order: dict[str, Any], account: str, charge: dict) -> None:
    # Computed as the connector does, but the connector has already sent the seller's share
    # from this charge: the floor's request has the same fields, for an amount it still covers.
    due = Decimal(str(order["total_price"])) - Decimal(str(order["total_commission"]))
    body = urlencode(
        {
            "amount": min(int(due * 100), FLOOR_AMOUNT),
            "currency": charge["currency"],
            "destination": account,
            "source_transaction": charge["id"],
            "transfer_group": order["commercial_id"],
            "metadata[miraklId]": order["order_id"],
            "metadata[floor]": "1",
        }
    )
    stripe.call("POST", "/v1/transfers", body, **{"Idempotency-Key": f"floor-{order['order_id']}"})


def run(mirakl_url: str, stripe_url: str, accounts: dict[str, str], concurrency: int) -> int:
    mirakl = Client(mirakl_url, {"Authorization": "bench", "Accept": "application/json"})
    stripe = Client(stripe_url, {"Authorization": "Bearer sk_test_bench"})
    paid, offset = 0, 0
    listing = Charges(stripe)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while True:
            page = mirakl.call("GET", "/api/orders?" + urlencode({"max": PAGE, "offset": offset}))
            orders = page["orders"]
            if not orders:
                return paid
            charges = listing.of(orders)
            jobs = [
                pool.submit(
                    transfer,
                    stripe,
                    order,
                    accounts[str(order["shop_id"])],
                    charges[order["transaction_number"]],
                )
                for order in orders
            ]
            for job in jobs:
                job.result()
            paid += len(orders)
            offset += len(orders)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirakl_url")
    parser.add_argument("stripe_url")
    parser.add_argument("accounts_json", help="a JSON file: Mirakl shop id → acct_ id")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with open(args.accounts_json, encoding="utf-8") as handle:
        accounts = json.load(handle)
    print(run(args.mirakl_url, args.stripe_url, accounts, args.concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
