"""Benchmark of ``connector reconcile``: API calls, seconds and peak memory per window size.

For each size N (default 1,000 and 20,000 rows) it starts from empty sandboxes and an empty
database, seeds N money rows that agree with Stripe (60 % order transfers, a reversal on one
transfer in ten, 20 % refunds, 20 % payouts over 20 shops; the Stripe objects are made
through the connector's own gateway), then reconciles the window in-process three times: a
warm-up run, a timed run, and a run under ``tracemalloc`` for the peak of Python memory it
allocated. It prints Stripe and Mirakl calls and seconds per 10,000 reconciled rows (wall
time, which includes the sandboxes' own work, and the connector's CPU time), and
checks that a clean window gives no finding and that peak memory stays flat (20,000 rows
within 1.5x of 1,000).

    python bench/reconcile_benchmark.py                  # 1,000 and 20,000 rows
    python bench/reconcile_benchmark.py --sizes 1000 --latency-ms 20

Not a test: figures depend on the machine. docs/reconciliation.md reports measured ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from split_benchmark import start_mirakl  # noqa: E402

from sandbox.mirakl.control import MiraklControl  # noqa: E402
from sandbox.servers import start_stripe  # noqa: E402
from sandbox.stripe.control import StripeControl  # noqa: E402

SHOPS = 20
SEED_THREADS = 8
COMMIT_EVERY = 500  # rows per seeding transaction


def build_app(stripe_url: str, mirakl_url: str, database_url: str, args: argparse.Namespace):
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.db_cli import init_migrations

    app = create_app(
        {
            "APP_ENV": "test",
            "APP_SECRET": "bench",
            "OPERATOR_PASSWORD": "bench",
            "BASE_HOST": "bench.local",
            "STRIPE_CLIENT_SECRET": "sk_test_bench",
            "STRIPE_API_BASE": stripe_url,
            "STRIPE_MAX_RPS": str(args.max_rps),
            "MIRAKL_HOST_NAME": mirakl_url,
            "MIRAKL_API_KEY": "bench",
            "DATABASE_URL": database_url,
            "REDIS_URL": "redis://127.0.0.1:1/0",  # no Redis: local pacing, like a CLI run
            "ENABLE_PRODUCT_PAYMENT_REFUND": "true",
            "ENABLE_SERVICE_PAYMENT_REFUND": "true",
        }
    )
    with app.app_context():
        init_migrations(app)
        upgrade()
    return app


def seed(app, stripe: StripeControl, rows: int) -> None:
    """``rows`` money rows and the Stripe objects they own, all in agreement."""
    from webapp.extensions import db
    from webapp.models import AccountMapping
    from webapp.services.clients import get_stripe

    gateway = get_stripe()
    accounts = []
    for shop in range(1, SHOPS + 1):
        acct = gateway.create_account({"type": "express"}, idempotency_key=f"bench-acct-{shop}")
        stripe.set_account(acct["id"], charges_enabled=True, payouts_enabled=True)
        stripe.set_balance(acct["id"], "eur", 10**12)
        db.session.add(
            AccountMapping(mirakl_shop_id=shop, stripe_account_id=acct["id"], payout_enabled=True)
        )
        accounts.append(acct["id"])
    db.session.commit()
    mappings = {
        m.stripe_account_id: (m.id, m.mirakl_shop_id)
        for m in db.session.execute(db.select(AccountMapping)).scalars()
    }
    transfers, refunds = rows * 6 // 10, rows * 2 // 10
    payouts = rows - transfers - refunds
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        _seed_transfers(app, pool, accounts, mappings, transfers)
        _seed_refunds(app, pool, stripe, refunds)
        _seed_payouts(app, pool, accounts, mappings, payouts)


def _in_batches(app, pool, count: int, make_object, make_rows) -> None:
    from webapp.extensions import db

    for first in range(0, count, COMMIT_EVERY):
        indexes = range(first, min(count, first + COMMIT_EVERY))
        objects = list(pool.map(lambda i: (i, make_object(i)), indexes))
        for i, obj in objects:
            make_rows(i, obj)
        db.session.commit()


def _seed_transfers(app, pool, accounts, mappings, count: int) -> None:
    from webapp.models import StripeTransfer, TransferStatus, TransferType
    from webapp.services.clients import get_stripe
    from webapp.services.ledger import transitions

    gateway = get_stripe()

    def make_object(i: int):
        acct = accounts[i % SHOPS]
        order_id = f"B-{i:06d}-A"
        meta = {"miraklId": order_id, "connectorType": TransferType.PRODUCT_ORDER.value}
        transfer = gateway.create_transfer(
            amount=1000 + i % 500,
            currency="eur",
            destination=acct,
            metadata=meta,
            idempotency_key=f"bench-tr-{i}",
            transfer_group=order_id[:-2],
        )
        reversal = None
        if i % 10 == 0:
            reversal = gateway.create_reversal(
                transfer["id"],
                100,
                metadata={"miraklId": f"R{i}", "connectorType": TransferType.REFUND.value},
                idempotency_key=f"bench-trr-{i}",
            )
        return acct, transfer, reversal

    def make_rows(i: int, made) -> None:
        acct, transfer, reversal = made
        mapping_id, shop_id = mappings[acct]
        row = StripeTransfer(
            mirakl_id=transfer["metadata"]["miraklId"],
            type=TransferType.PRODUCT_ORDER.value,
            account_mapping_id=mapping_id,
            transfer_id=transfer["id"],
            amount=transfer["amount"],
            currency="eur",
            mirakl_shop_id=shop_id,
        )
        transitions.create(row, TransferStatus.CREATED, None, actor="bench")
        if reversal is not None:
            back = StripeTransfer(
                mirakl_id=f"R{i}",
                type=TransferType.REFUND.value,
                transfer_id=reversal["id"],
                transaction_id=transfer["id"],
                amount=100,
                currency="eur",
            )
            transitions.create(back, TransferStatus.CREATED, None, actor="bench")

    _in_batches(app, pool, count, make_object, make_rows)


def _seed_refunds(app, pool, stripe: StripeControl, count: int) -> None:
    from webapp.models import RefundStatus, StripeRefund
    from webapp.services.clients import get_stripe
    from webapp.services.ledger import transitions

    gateway = get_stripe()

    def make_object(i: int):
        charge = stripe.create_charge(amount=5000, currency="eur")["id"]
        meta = {"miraklRefundId": f"BR{i}", "miraklOrderId": f"B-{i:06d}-A"}
        return gateway.create_refund(charge, 1234, metadata=meta, idempotency_key=f"bench-re-{i}")

    def make_rows(i: int, refund) -> None:
        row = StripeRefund(
            mirakl_refund_id=f"BR{i}",
            mirakl_order_id=f"B-{i:06d}-A",
            transaction_id=refund["charge"],
            stripe_refund_id=refund["id"],
            amount=1234,
            currency="eur",
        )
        transitions.create(row, RefundStatus.CREATED, None, actor="bench")

    _in_batches(app, pool, count, make_object, make_rows)


def _seed_payouts(app, pool, accounts, mappings, count: int) -> None:
    from webapp.models import PayoutStatus, StripePayout
    from webapp.services.clients import get_stripe
    from webapp.services.ledger import transitions

    gateway = get_stripe()

    def make_object(i: int):
        acct = accounts[i % SHOPS]
        meta = {"miraklShopId": mappings[acct][1], "invoiceId": 10_000 + i}
        payout = gateway.create_payout(
            acct, amount=777, currency="eur", metadata=meta, idempotency_key=f"bench-po-{i}"
        )
        return acct, payout

    def make_rows(i: int, made) -> None:
        acct, payout = made
        mapping_id, shop_id = mappings[acct]
        row = StripePayout(
            account_mapping_id=mapping_id,
            amount=777,
            currency="eur",
            mirakl_invoice_id=10_000 + i,
            payout_id=payout["id"],
            mirakl_shop_id=shop_id,
        )
        transitions.create(row, PayoutStatus.CREATED, None, actor="bench")

    _in_batches(app, pool, count, make_object, make_rows)


def reconcile_once(app, token: str, *, traced: bool):
    from webapp.clock import utcnow
    from webapp.extensions import db
    from webapp.services.reconcile import sync

    db.session.remove()
    now = utcnow()
    if traced:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    outcome = sync.reconcile(since=now - timedelta(days=1), until=now, token=token)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = 0
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, (seconds, cpu), peak


def measure(size: int, args, stripe, stripe_url: str, mirakl, mirakl_url: str) -> dict:
    stripe.reset()
    mirakl.reset()
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        app = build_app(stripe_url, mirakl_url, url, args)
        with app.app_context():
            started = time.perf_counter()
            seed(app, stripe, size)
            seeded = time.perf_counter() - started
            stripe.set_faults(latency_ms=args.latency_ms)
            mirakl.set_faults(latency_ms=args.latency_ms)
            reconcile_once(app, "bench-warm-up", traced=False)  # caches, connections
            outcome, (seconds, cpu), _ = reconcile_once(app, "bench-timed", traced=False)
            traced, _, peak = reconcile_once(app, "bench-traced", traced=True)
            stripe.clear_faults()
            mirakl.clear_faults()
            from webapp.extensions import db

            db.session.remove()
            db.engine.dispose()
    reconciled = sum(outcome.examined.values())
    per = 10_000 / max(reconciled, 1)
    return {
        "rows": size,
        "reconciled": reconciled,
        "seed_s": seeded,
        "findings": sum(outcome.found.values()) + sum(traced.found.values()),
        "stripe": outcome.stripe_calls,
        "mirakl": outcome.mirakl_calls,
        "stripe_per_10k": outcome.stripe_calls * per,
        "mirakl_per_10k": outcome.mirakl_calls * per,
        "seconds": seconds,
        "seconds_per_10k": seconds * per,
        "cpu_per_10k": cpu * per,
        "peak_mib": peak / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every API call")
    parser.add_argument("--max-rps", type=float, default=1000, help="STRIPE_MAX_RPS pacing")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()

    stripe_server = start_stripe()
    mirakl_proc, mirakl_url = start_mirakl()
    try:
        stripe, mirakl = StripeControl(stripe_server.url), MiraklControl(mirakl_url)
        results = [
            measure(size, args, stripe, stripe_server.url, mirakl, mirakl_url)
            for size in args.sizes
        ]
    finally:
        mirakl_proc.terminate()
        stripe_server.stop()

    print(f"API latency added: {args.latency_ms} ms; STRIPE_MAX_RPS {args.max_rps:g}")
    header = (
        f"{'rows':>7} {'compared':>9} {'findings':>8} {'Stripe':>7} {'Mirakl':>7} "
        f"{'Stripe/10k':>10} {'Mirakl/10k':>10} {'s':>7} {'s/10k':>7} {'CPU s/10k':>9} "
        f"{'peak MiB':>9}"
    )
    print(header)
    for r in results:
        print(
            f"{r['rows']:>7} {r['reconciled']:>9} {r['findings']:>8} {r['stripe']:>7} "
            f"{r['mirakl']:>7} {r['stripe_per_10k']:>10.1f} {r['mirakl_per_10k']:>10.1f} "
            f"{r['seconds']:>7.2f} {r['seconds_per_10k']:>7.2f} {r['cpu_per_10k']:>9.2f} "
            f"{r['peak_mib']:>9.2f}"
        )
    ok = all(r["findings"] == 0 for r in results)
    if len(results) >= 2:
        ratio = results[-1]["peak_mib"] / max(results[0]["peak_mib"], 1e-9)
        flat = ratio <= 1.5
        print(
            f"peak memory {results[-1]['rows']:,} vs {results[0]['rows']:,} rows: "
            f"{ratio:.2f}x ({'flat' if flat else 'NOT flat'}, limit 1.5x)"
        )
        ok = ok and flat
    print("clean windows: no finding" if ok else "FAILED: a finding on a clean window, or growth")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
