"""Benchmark of the console with a million money rows on PostgreSQL.

Creates a throwaway database, migrates it with the real migrations, fills it with
``--rows`` money rows (70 % transfers, 15 % refunds, 15 % payouts, one history event each,
one payment mapping per two orders, 2,000 shops, dates spread over a year) using
``generate_series``, then times the
pages an operator opens all day through the real app (Flask test client, logged in):
list pages (plain, filtered, sorted), search, the order timeline (by order, charge,
transfer, refund, payout id), the shop page and the dashboard with its charts.

    python bench/console_benchmark.py --rows 1000000 --repeat 5

Prints the median and worst time of each page; the target is under 300 ms. The dashboard's
charts are cached for a minute per process, so its first (cold) render is printed apart. Not a test:
figures depend on the machine. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.db_cli import init_migrations  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.views.auth import create_user  # noqa: E402

SERVER = "postgresql://postgres@127.0.0.1:5432"
TARGET_MS = 300
EMAIL, PASSWORD = "bench@example.com", "benchmark password"

FILL = """
INSERT INTO account_mapping (mirakl_shop_id, stripe_account_id, payout_enabled, payin_enabled,
  ignored, details_submitted, creation_datetime, modification_datetime)
SELECT s, 'acct_bench' || s, s % 10 <> 0, s % 10 <> 0, false, true, now(), now()
FROM generate_series(1, 2000) s;

INSERT INTO payment_mapping (mirakl_commercial_order_id, stripe_charge_id, status, stripe_amount,
  currency, attempt, creation_datetime, modification_datetime)
SELECT 'C-' || n, 'ch_bench' || n, 'captured', 10000, 'eur', 0,
  now() - (n % 365) * interval '1 day', now()
FROM generate_series(1, :orders / 2) n;

INSERT INTO stripe_transfer (mirakl_id, type, account_mapping_id, mirakl_shop_id, transfer_id,
  transaction_id, amount, status, status_reason, currency, transfer_group, attempt,
  creation_datetime, modification_datetime, mirakl_created_date)
SELECT 'C-' || (n / 2 + 1) || '-' || chr(65 + n % 2), 'TRANSFER_PRODUCT_ORDER', n % 2000 + 1,
  n % 2000 + 1, CASE WHEN n % 20 = 0 THEN NULL ELSE 'tr_bench' || n END,
  'ch_bench' || (n / 2 + 1), 1000 + n % 5000,
  CASE WHEN n % 20 = 0 THEN 'TRANSFER_FAILED' ELSE 'TRANSFER_CREATED' END,
  CASE WHEN n % 20 = 0 THEN 'Insufficient funds in Stripe account.' END,
  CASE WHEN n % 7 = 0 THEN 'usd' ELSE 'eur' END, 'C-' || (n / 2 + 1), 0,
  now() - (n % 365) * interval '1 day', now(), now() - (n % 365) * interval '1 day'
FROM generate_series(0, :transfers - 1) n;

INSERT INTO stripe_refund (type, amount, currency, mirakl_refund_id, mirakl_commercial_order_id,
  mirakl_order_id, transaction_id, stripe_refund_id, status, mirakl_shop_id, attempt,
  creation_datetime, modification_datetime)
SELECT 'REFUND_PRODUCT_ORDER', 500, 'eur', 'R' || n, 'C-' || (n * 3 % (:orders / 2) + 1),
  'C-' || (n * 3 % (:orders / 2) + 1) || '-A', 'ch_bench' || (n * 3 % (:orders / 2) + 1),
  're_bench' || n, CASE WHEN n % 25 = 0 THEN 'REFUND_FAILED' ELSE 'REFUND_CREATED' END,
  n % 2000 + 1, 0, now() - (n % 365) * interval '1 day', now()
FROM generate_series(1, :refunds) n;

INSERT INTO stripe_payout (account_mapping_id, amount, currency, mirakl_invoice_id, payout_id,
  status, mirakl_shop_id, attempt, creation_datetime, modification_datetime, mirakl_created_date)
SELECT n % 2000 + 1, 20000, 'eur', n, 'po_bench' || n,
  CASE WHEN n % 30 = 0 THEN 'PAYOUT_FAILED' ELSE 'PAYOUT_CREATED' END, n % 2000 + 1, 0,
  now() - (n % 365) * interval '1 day', now(), now() - (n % 365) * interval '1 day'
FROM generate_series(1, :payouts) n;

INSERT INTO operation_event (operation, operation_id, from_status, to_status, reason, attempt,
  actor, created_at)
SELECT 'transfer', id, 'TRANSFER_PENDING', status, status_reason, 0, 'bench', creation_datetime
FROM stripe_transfer;
INSERT INTO operation_event (operation, operation_id, from_status, to_status, attempt, actor,
  created_at)
SELECT 'refund', id, 'REFUND_PENDING', status, 0, 'bench', creation_datetime FROM stripe_refund;
INSERT INTO operation_event (operation, operation_id, from_status, to_status, attempt, actor,
  created_at)
SELECT 'payout', id, 'PAYOUT_PENDING', status, 0, 'bench', creation_datetime FROM stripe_payout;
"""

PAGES = [
    ("transfers list", "/console/transfers/"),
    ("transfers, FAILED filter", "/console/transfers/?flt0_status_equals=TRANSFER_FAILED"),
    ("transfers, sorted by amount", "/console/transfers/?sort=2&desc=1"),
    ("transfers, search order id", "/console/transfers/?search=C-123456-A"),
    ("refunds list", "/console/refunds/"),
    ("payouts list", "/console/payouts/"),
    ("payouts, FAILED filter", "/console/payouts/?flt0_status_equals=PAYOUT_FAILED"),
    ("payments list", "/console/payments/"),
    ("shops list", "/console/shops/"),
    ("audit list", "/console/audit/"),
    ("timeline: order id", "/console/timeline/?q=C-123456-A"),
    ("timeline: commercial id", "/console/timeline/?q=C-123456"),
    ("timeline: charge", "/console/timeline/?q=ch_bench123456"),
    ("timeline: transfer", "/console/timeline/?q=tr_bench246911"),
    ("timeline: refund", "/console/timeline/?q=re_bench4242"),
    ("timeline: payout", "/console/timeline/?q=po_bench777"),
    ("timeline: invoice", "/console/timeline/?q=93117"),
    ("shop page", "/console/shop/42"),
    ("dashboard (7-day charts)", "/console/"),
    ("dashboard (30-day charts)", "/console/?days=30"),
]


def fill(url: str, rows: int) -> None:
    transfers, refunds = rows * 70 // 100, rows * 15 // 100
    payouts = rows - transfers - refunds
    params = {"transfers": transfers, "refunds": refunds, "payouts": payouts,
              "orders": transfers}  # fmt: skip
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for statement in FILL.split(";\n"):
            if statement.strip():
                sql = statement
                for name, value in params.items():
                    sql = sql.replace(f":{name}", str(value))
                conn.execute(sql)
        conn.execute("ANALYZE")


def log_in(client) -> None:
    import re

    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page).group(1)
    answer = client.post(
        "/console/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302, answer.status_code


def time_pages(app, repeat: int) -> list[tuple[str, float, float, int]]:
    client = app.test_client()
    log_in(client)
    results = []
    for name, url in PAGES:
        start = time.perf_counter()
        client.get(url)  # the first (cold) call: plans and pages not yet cached
        cold = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            answer = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code in (200, 302), (url, answer.status_code)
        results.append((name, statistics.median(times), max(times), cold))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    name = f"console_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{SERVER}/{name}"
    try:
        app = create_app({
            "APP_ENV": "test", "APP_SECRET": "bench", "OPERATOR_PASSWORD": "bench",
            "STRIPE_CLIENT_SECRET": "sk_test_bench", "MIRAKL_HOST_NAME": "http://127.0.0.1:9",
            "MIRAKL_API_KEY": "bench", "DATABASE_URL": url, "BASE_HOST": "bench.test",
            "SCHEME": "http", "STRIPE_SELLERS_WEBHOOK_SECRET": "whsec_bench",
            "STRIPE_OPERATOR_WEBHOOK_SECRET": "whsec_bench", "REDIS_URL": "redis://127.0.0.1:1/0",
        })  # fmt: skip
        with app.app_context():
            init_migrations(app)
            upgrade()
            started = time.perf_counter()
            fill(url, args.rows)
            total = db.session.execute(text(
                "SELECT (SELECT count(*) FROM stripe_transfer) + (SELECT count(*) FROM "
                "stripe_refund) + (SELECT count(*) FROM stripe_payout)")).scalar()  # fmt: skip
            print(f"filled {total:,} money rows in {time.perf_counter() - started:.0f} s")
            create_user(EMAIL, PASSWORD)
            results = time_pages(app, args.repeat)
            db.engine.dispose()
        print(f"\n{'page':<30} {'median ms':>10} {'worst ms':>10} {'first ms':>10}")
        for page, median, worst, cold in results:
            flag = "" if median < TARGET_MS else "  over target"
            print(f"{page:<30} {median:>10.1f} {worst:>10.1f} {cold:>10.1f}{flag}")
    finally:
        if not args.keep:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
