"""Benchmark of the payment split: ``connector process-transfer`` over N orders.

Runs the real CLI command in a child process against the two sandboxes (each its own
process, with configurable API latency) and prints what an operator sizing the connector
wants to know: Mirakl calls per 1,000 orders, Stripe calls per transfer, orders per second,
the Stripe request rate achieved against ``STRIPE_MAX_RPS``, the connector's own CPU time per
order and its peak memory. It also checks the result: exactly one transfer per order.

    python bench/split_benchmark.py --orders 1000 --latency-ms 50 --concurrency 8 --max-rps 20

"CPU per order" is the run's CPU less that of the same command run once before with no
order to pay (start-up, imports, the empty Mirakl call), divided by N; the figure with
start-up included is printed too. ``--stacks`` needs ``pip install py-spy``.

Not a test: figures depend on the machine. docs/benchmark.md reports measured figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
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
        REDIS_URL="redis://127.0.0.1:1/0",  # CLI runs without Redis
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


def seed_accounts(env: dict) -> None:
    """The database, and shops mapped to connected accounts."""
    flask(env, "db", "upgrade")
    script = (
        "import json,sys\n"
        "from webapp import create_app\nfrom webapp.extensions import db\n"
        "from webapp.models import AccountMapping\nfrom webapp.services.clients import get_stripe\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    for shop in range(1, {SHOPS + 1}):\n"
        "        acct = get_stripe().create_account({'type': 'express'},"
        " idempotency_key=f'bench-acct-{shop}')\n"
        "        db.session.add(AccountMapping(mirakl_shop_id=shop, stripe_account_id=acct['id'],"
        " payout_enabled=True, payin_enabled=True))\n"
        "    db.session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True)


def seed_orders(args, mirakl: MiraklControl, stripe: StripeControl) -> None:
    """N orders, each paid by its own charge."""

    def charge(_: int) -> str:
        return stripe.create_charge(amount=8472, currency="eur")["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        charges = list(pool.map(charge, range(args.orders)))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    orders = [
        demo.make_product_order(
            f"B-{i:06d}-A",
            shop_id=1 + i % SHOPS,
            transaction_number=charges[i],
            created_date=(start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        for i in range(args.orders)
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


def run_connector(
    env: dict, profile: str = "", stacks: str = ""
) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak memory (MiB) of one `process-transfer` run."""
    runner = [sys.executable]
    if profile:
        runner = [sys.executable, "-m", "cProfile", "-o", profile]
    elif stacks:  # py-spy samples every thread, where cProfile sees only the main one
        runner = ["py-spy", "record", "--format", "raw", "--rate", "500", "-o", stacks, "--"]
        runner += [sys.executable]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [*runner, "-m", "flask", "--app", "wsgi", "connector", "process-transfer"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
        peak = PeakMemory(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, nothing else
        peak.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"process-transfer failed: {err.read().strip()[-500:]}")
        peak_mib = peak.mib or usage.ru_maxrss / 1024
        return wall, usage.ru_utime + usage.ru_stime, peak_mib, out.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8, help="money jobs in flight")
    parser.add_argument("--max-rps", type=float, default=20.0, help="STRIPE_MAX_RPS")
    parser.add_argument("--database", default="", help="DATABASE_URL (default: a SQLite file)")
    parser.add_argument("--profile", default="", help="write a cProfile of the connector here")
    parser.add_argument(
        "--stacks", default="", help="write py-spy's sampled stacks (all threads) here"
    )
    args = parser.parse_args()

    mirakl_proc, mirakl_url = start_mirakl()
    stripe_handle = start_stripe()
    folder = tempfile.mkdtemp(prefix="connector-bench-")
    db = args.database or f"sqlite:///{folder}/bench.db"
    try:
        # Reading back thousands of objects takes a while on a loaded machine.
        mirakl = MiraklControl(mirakl_url, timeout=300)
        stripe = StripeControl(stripe_handle.url, timeout=300)
        env = connector_env(args, mirakl_url, stripe_handle.url, db)
        seed_accounts(env)
        # The same command with no order to pay: start-up and the run's fixed cost.
        _, baseline_cpu, _, _ = run_connector(env)
        print(f"seeding {args.orders} orders and charges…", flush=True)
        seed_orders(args, mirakl, stripe)
        mirakl.clear_requests()
        stripe.clear_requests()
        mirakl.set_faults(latency_ms=args.latency_ms)
        stripe.set_faults(latency_ms=args.latency_ms)

        wall, cpu, peak_mib, out = run_connector(env, args.profile, args.stacks)

        mirakl_calls = len(mirakl.requests())
        stripe_requests = stripe.requests()
        transfers = stripe.objects("transfers")
        per_order = {}
        for transfer in transfers:
            per_order[transfer["metadata"]["miraklId"]] = (
                per_order.get(transfer["metadata"]["miraklId"], 0) + 1
            )
        stamps = sorted(r["at"] for r in stripe_requests)
        span = _seconds(stamps[0], stamps[-1]) if len(stamps) > 1 else wall
        figures = {
            "orders": args.orders,
            "transfers created": len(transfers),
            "orders with exactly one transfer": sum(1 for n in per_order.values() if n == 1),
            "orders paid twice": sum(1 for n in per_order.values() if n > 1),
            "API latency (ms)": args.latency_ms,
            "money jobs in flight": args.concurrency,
            "wall time (s)": round(wall, 1),
            "orders per second": round(args.orders / wall, 1),
            "Mirakl calls": mirakl_calls,
            "Mirakl calls per 1,000 orders": round(mirakl_calls * 1000 / args.orders, 1),
            "Stripe calls": len(stripe_requests),
            "Stripe calls per transfer": round(len(stripe_requests) / max(1, len(transfers)), 2),
            "Stripe rate achieved (req/s)": round(len(stripe_requests) / span, 1),
            "STRIPE_MAX_RPS": args.max_rps,
            "share of STRIPE_MAX_RPS": f"{100 * len(stripe_requests) / span / args.max_rps:.0f}%",
            "connector CPU per order (ms)": round(1000 * (cpu - baseline_cpu) / args.orders, 2),
            "connector CPU per order, start-up included (ms)": round(1000 * cpu / args.orders, 2),
            "connector start-up and empty run (CPU s)": round(baseline_cpu, 2),
            "connector peak memory (MiB)": round(peak_mib, 1),
        }
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
        print("summary:", out.strip().replace("\n", " | "))
        print(json.dumps(figures))
        return 0 if figures["orders paid twice"] == 0 and len(transfers) == args.orders else 1
    finally:
        mirakl_proc.terminate()
        stripe_handle.stop()


def _seconds(first: float, last: float) -> float:
    """Seconds between two request-log stamps (Unix times)."""
    return max(0.001, float(last) - float(first))


if __name__ == "__main__":
    raise SystemExit(main())
