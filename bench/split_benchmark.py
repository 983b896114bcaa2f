"""Benchmark of the payment split: ``connector process-transfer`` over N orders.

Runs the real connector against the two sandboxes (each its own process, with configurable
API latency) and prints what an operator sizing the connector wants to know: Mirakl calls per
1,000 orders, Stripe calls per transfer, orders per second as a share of what
``STRIPE_MAX_RPS`` allows at one call per order, the connector's CPU per order against the
floor, and its peak memory. It also checks the result: exactly one transfer per order.

    python bench/split_benchmark.py --orders 1000 --latency-ms 50 --max-rps 20
    python bench/split_benchmark.py --orders 1000 --latency-ms 50 --max-rps 20 --workers 4

By default the connector's database is a fresh PostgreSQL database (the production one) on
``--pg-server``; ``--db sqlite`` uses a SQLite file. Without ``--workers`` the CLI runs the job
inline, ``--concurrency`` money jobs in flight; with ``--workers N`` the job is enqueued and N
worker processes (as N dynos) share the money queue and the Stripe pacing through Redis.

"CPU per order" is the connector's CPU less that of the same command run once before with no
order to pay (start-up, imports, the empty Mirakl call), divided by N. The floor
(``bench/floor_client.py``) then makes the same Mirakl and Stripe requests with a bare
``http.client`` client and no database, in the same run against the same sandboxes; the ratio
of the two CPU figures holds from one machine to the next, where milliseconds do not.
``--stacks`` needs ``pip install py-spy``.

Not a test: figures depend on the machine. docs/benchmark.md reports measured figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.mirakl import demo  # noqa: E402
from sandbox.mirakl.control import MiraklControl  # noqa: E402
from sandbox.servers import start_stripe  # noqa: E402
from sandbox.stripe.control import StripeControl  # noqa: E402

SHOPS = 20
SEED_BATCH = 500  # orders per control-API call


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mirakl() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mirakl", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/_sandbox/state", timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the Mirakl sandbox did not start")


def connector_env(args: argparse.Namespace, mirakl_url: str, stripe_url: str, db: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MIRAKL_"))}
    env.update(
        OPERATOR_PASSWORD="bench",
        BASE_HOST="bench.local",
        APP_SECRET="bench",
        STRIPE_CLIENT_SECRET="sk_test_bench",
        STRIPE_API_BASE=stripe_url,
        STRIPE_MAX_RPS=str(args.max_rps),
        STRIPE_MAX_NETWORK_RETRIES="2",
        MIRAKL_HOST_NAME=mirakl_url,
        MIRAKL_API_KEY="bench",
        DATABASE_URL=db,
        # The CLI run goes without Redis (pacing per process); workers share it through Redis.
        REDIS_URL=args.redis_url if args.workers else "redis://127.0.0.1:1/0",
        ENABLE_PRODUCT_PAYMENT_SPLIT="true",
        MONEY_JOB_CONCURRENCY=str(args.concurrency),
        LOG_FORMAT="text",
    )
    return env


def flask(env: dict, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def create_database(args: argparse.Namespace, folder: str) -> tuple[str, Callable[[], None]]:
    """The connector's database: a fresh PostgreSQL database, or a SQLite file."""
    if args.db == "sqlite":
        return f"sqlite:///{folder}/bench.db", lambda: None
    import psycopg

    name = f"connector_bench_{os.getpid()}"
    with psycopg.connect(args.pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(args.pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{args.pg_server.rsplit('/', 1)[0]}/{name}", drop


def seed_accounts(env: dict) -> dict[str, str]:
    """The database, and shops mapped to connected accounts; returns shop id → acct_ id."""
    flask(env, "db", "upgrade")
    script = (
        "import json,sys\n"
        "from webapp import create_app\nfrom webapp.extensions import db\n"
        "from webapp.models import AccountMapping\nfrom webapp.services.clients import get_stripe\n"
        "from sandbox.stripe.control import StripeControl\n"
        "app = create_app()\n"
        "accounts = {}\n"
        "with app.app_context():\n"
        "    control = StripeControl(app.config['STRIPE_API_BASE'])\n"
        f"    for shop in range(1, {SHOPS + 1}):\n"
        "        acct = get_stripe().create_account({'type': 'express',"
        " 'capabilities': {'transfers': {'requested': True}}},"
        " idempotency_key=f'bench-acct-{shop}')\n"
        "        control.ready_account(acct['id'])  # onboarded: transfers active\n"
        "        accounts[shop] = acct['id']\n"
        "        db.session.add(AccountMapping(mirakl_shop_id=shop, stripe_account_id=acct['id'],"
        " payout_enabled=True, payin_enabled=True))\n"
        "    db.session.commit()\n"
        "print(json.dumps(accounts))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def seed_orders(args, mirakl: MiraklControl, stripe: StripeControl) -> None:
    """N orders, each paid by its own charge."""

    def charge(_: int) -> tuple[str, int]:
        made = stripe.create_charge(amount=8472, currency="eur")
        return made["id"], made["created"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        charges = list(pool.map(charge, range(args.orders)))
    # Mirakl creates each order just after its payment, as at a real checkout.
    orders = [
        demo.make_product_order(
            f"B-{i:06d}-A",
            shop_id=1 + i % SHOPS,
            transaction_number=charge_id,
            created_date=(datetime.fromtimestamp(created, UTC) + timedelta(seconds=1)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        )
        for i, (charge_id, created) in enumerate(charges)
    ]
    for first in range(0, len(orders), SEED_BATCH):
        mirakl.add_orders(orders[first : first + SEED_BATCH])


class PeakMemory:
    """The child's own peak resident memory, read from ``/proc/<pid>/status`` (``VmHWM``).

    Not ``ru_maxrss``: Linux carries the high-water mark of the process that forked the child
    across ``exec``, so it would report this script's memory (the seeded orders) instead.
    """

    def __init__(self, pid: int) -> None:
        self.path = f"/proc/{pid}/status"
        self.mib = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.is_set():
            try:
                with open(self.path, encoding="ascii") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.mib = max(self.mib, int(line.split()[1]) / 1024)
            except OSError:
                return  # not Linux, or gone
            self.done.wait(0.02)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def run_measured(command: list[str], env: dict) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak memory (MiB) of one child process; its output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=err)
        peak = PeakMemory(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, nothing else
        peak.stop()
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{command[-1]} failed: {err.read().strip()[-800:]}")
        return wall, usage.ru_utime + usage.ru_stime, peak.mib or usage.ru_maxrss / 1024, out.read()


def run_connector(
    env: dict, profile: str = "", stacks: str = ""
) -> tuple[float, float, float, str]:
    """One inline ``process-transfer`` run (the CLI, as cron would run it)."""
    runner = [sys.executable]
    if profile:
        runner = [sys.executable, "-m", "cProfile", "-o", profile]
    elif stacks:  # py-spy samples every thread, where cProfile sees only the main one
        runner = ["py-spy", "record", "--format", "raw", "--rate", "500", "-o", stacks, "--"]
        runner += [sys.executable]
    command = [*runner, "-m", "flask", "--app", "wsgi", "connector", "process-transfer"]
    return run_measured(command, env)


def run_workers(
    env: dict, workers: int, stripe: StripeControl, orders: int, timeout: float
) -> tuple[float, float, float, str]:
    """``process-transfer`` enqueued as the scheduler does, run by ``workers`` RQ workers.

    Returns the wall seconds until every order has its transfer, the workers' CPU seconds
    added up, the largest worker's peak memory, and the job's summary.
    """
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "connector", "worker"]
    procs = [
        subprocess.Popen(
            [*command, "jobs", "money"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    peaks = [PeakMemory(proc.pid) for proc in procs]
    started = time.monotonic()
    enqueue = (
        "from webapp import create_app\nfrom webapp.jobs.scheduler import enqueue_run\n"
        "with create_app().app_context():\n    enqueue_run('process-transfer')\n"
    )
    subprocess.run([sys.executable, "-c", enqueue], env=env, cwd=ROOT, check=True)
    while len(stripe.objects("transfers")) < orders and time.monotonic() - started < timeout:
        time.sleep(1)
    wall = time.monotonic() - started
    cpu, peak = 0.0, 0.0
    for proc, watch in zip(procs, peaks, strict=True):
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        watch.stop()
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, watch.mib)
    return wall, cpu, peak, f"{workers} workers"


def run_floor(
    mirakl_url: str, stripe_url: str, accounts: dict[str, str], concurrency: int
) -> tuple[float, float]:
    """Wall and CPU seconds of the bare client making the same requests."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(accounts, handle)
        handle.flush()
        command = [
            sys.executable,
            str(ROOT / "bench" / "floor_client.py"),
            mirakl_url,
            stripe_url,
            handle.name,
            "--concurrency",
            str(concurrency),
        ]
        wall, cpu, _, _ = run_measured(command, dict(os.environ))
    return wall, cpu


def calls_by_endpoint(requests: list[dict]) -> str:
    """``POST /v1/transfers: 1000, GET /v1/charges: 10``: ids folded, one line per endpoint."""
    counts: dict[str, int] = {}
    for request in requests:
        path = re.sub(r"/(ch|pi|py|tr|acct|re|trr|po)_[A-Za-z0-9]+", r"/{\1}", request["path"])
        key = f"{request['method']} {path}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key}: {n}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def busiest_second(stamps: list[float]) -> int:
    """The most requests sent within any one second."""
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8, help="money jobs in flight")
    parser.add_argument("--max-rps", type=float, default=20.0, help="STRIPE_MAX_RPS")
    parser.add_argument("--workers", type=int, default=0, help="RQ workers (0: the CLI inline)")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--profile", default="", help="write a cProfile of the connector here")
    parser.add_argument(
        "--stacks", default="", help="write py-spy's sampled stacks (all threads) here"
    )
    args = parser.parse_args()

    mirakl_proc, mirakl_url = start_mirakl()
    stripe_handle = start_stripe()
    folder = tempfile.mkdtemp(prefix="connector-bench-")
    db, drop_database = create_database(args, folder)
    try:
        # Reading back thousands of objects takes a while on a loaded machine.
        mirakl = MiraklControl(mirakl_url, timeout=300)
        stripe = StripeControl(stripe_handle.url, timeout=300)
        env = connector_env(args, mirakl_url, stripe_handle.url, db)
        accounts = seed_accounts(env)
        # The same command with no order to pay: start-up and the run's fixed cost.
        _, baseline_cpu, _, _ = run_connector(env)
        if args.workers:
            baseline_cpu *= args.workers  # each worker process starts the app once
        print(f"seeding {args.orders} orders and charges…", flush=True)
        seed_orders(args, mirakl, stripe)
        mirakl.clear_requests()
        stripe.clear_requests()
        mirakl.set_faults(latency_ms=args.latency_ms)
        stripe.set_faults(latency_ms=args.latency_ms)

        if args.workers:
            timeout = 120 + 4 * args.orders / args.max_rps
            wall, cpu, peak_mib, out = run_workers(env, args.workers, stripe, args.orders, timeout)
        else:
            wall, cpu, peak_mib, out = run_connector(env, args.profile, args.stacks)

        mirakl_calls = len(mirakl.requests())
        stripe_requests = stripe.requests()
        transfers = stripe.objects("transfers")
        per_order: dict[str, int] = {}
        for transfer in transfers:
            per_order[transfer["metadata"]["miraklId"]] = (
                per_order.get(transfer["metadata"]["miraklId"], 0) + 1
            )
        stamps = sorted(float(r["at"]) for r in stripe_requests)
        span = _seconds(stamps[0], stamps[-1]) if len(stamps) > 1 else wall
        connector_cpu = 1000 * (cpu - baseline_cpu) / args.orders

        stripe.clear_requests()
        floor_wall, floor_cpu_s = run_floor(mirakl_url, stripe_handle.url, accounts, 8)
        floor_cpu = 1000 * floor_cpu_s / args.orders
        orders_per_second = args.orders / span
        stripe_rate = len(stripe_requests) / span
        figures = {
            "orders": args.orders,
            "database": args.db,
            "transfers created": len(transfers),
            "orders with exactly one transfer": sum(1 for n in per_order.values() if n == 1),
            "orders paid twice": sum(1 for n in per_order.values() if n > 1),
            "API latency (ms)": args.latency_ms,
            "mode": f"{args.workers} RQ workers" if args.workers else "CLI inline",
            "money jobs in flight": args.workers or args.concurrency,
            "wall time (s)": round(wall, 1),
            "orders per second": round(orders_per_second, 1),
            "Mirakl calls": mirakl_calls,
            "Mirakl calls per 1,000 orders": round(mirakl_calls * 1000 / args.orders, 1),
            "Stripe calls": len(stripe_requests),
            "Stripe calls per transfer": round(len(stripe_requests) / max(1, len(transfers)), 3),
            "Stripe rate achieved (req/s)": round(stripe_rate, 1),
            "Stripe requests in the busiest second": busiest_second(stamps),
            "STRIPE_MAX_RPS": args.max_rps,
            "share of STRIPE_MAX_RPS used": f"{100 * stripe_rate / args.max_rps:.0f}%",
            "orders/s as a share of STRIPE_MAX_RPS (1 call per order)": (
                f"{100 * orders_per_second / args.max_rps:.0f}%"
            ),
            "connector CPU per order (ms)": round(connector_cpu, 2),
            "connector CPU per order, start-up included (ms)": round(1000 * cpu / args.orders, 2),
            "connector start-up and empty run (CPU s)": round(baseline_cpu, 2),
            "floor CPU per order (ms)": round(floor_cpu, 2),
            "connector CPU ÷ floor CPU": round(connector_cpu / max(floor_cpu, 1e-9), 2),
            "floor wall time (s)": round(floor_wall, 1),
            "connector peak memory (MiB)": round(peak_mib, 1),
        }
        figures["Stripe calls by endpoint"] = calls_by_endpoint(stripe_requests)
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
        print("summary:", out.strip().replace("\n", " | "))
        print(json.dumps(figures))
        return 0 if figures["orders paid twice"] == 0 and len(transfers) == args.orders else 1
    finally:
        mirakl_proc.terminate()
        stripe_handle.stop()
        drop_database()


def _seconds(first: float, last: float) -> float:
    """Seconds between two request-log stamps (Unix times)."""
    return max(0.001, float(last) - float(first))


if __name__ == "__main__":
    raise SystemExit(main())
