"""``python -m sandbox.demo`` (``make demo``): the whole connector on a laptop, with demo data.

Starts the Mirakl and Stripe sandboxes, seeds them with the marketplace of
:mod:`sandbox.demo_data`, builds a SQLite database under ``instance/demo/``, creates a console
user, then runs the web app (gunicorn), RQ workers and the scheduler (every job every minute)
as child processes, plus two simulators in this process: sellers who finish their Stripe
onboarding, and a bank that returns one payout. Stays in the foreground until Ctrl-C, then
stops every child. ``--check`` runs for a bounded time instead and exits 0 once the console has
shops onboarded, payments validated, transfers, refunds and payouts made and failures to retry.

Needs Redis; uses one Redis database index (13 by default), flushed at start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import requests

from sandbox import demo_data
from sandbox.mirakl.control import MiraklControl
from sandbox.servers import start_stripe
from sandbox.stripe.control import StripeControl
from sandbox.stripe.events import make_event, sign_payload

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance" / "demo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
ADMIN_EMAIL = "admin@demo.example.com"
MIRAKL_API_KEY = "demo-operator-key"
STRIPE_SECRET_KEY = "sk_test_demo_connector"
SELLERS_WEBHOOK_SECRET = "whsec_demo_sellers"
OPERATOR_WEBHOOK_SECRET = "whsec_demo_operator"
JOBS = (
    "sync-onboarding",
    "validate-pending-debit",
    "process-transfer",
    "process-refund",
    "process-payout",
    "notify-failed-operation",
    "monitor-kyc-status",
)
EVERY_MINUTE = "* * * * *"
START_TIMEOUT = 30.0  # seconds a server may take to answer
STOP_TIMEOUT = 10.0  # seconds a child gets to exit after SIGTERM
SIMULATOR_PERIOD = 2.0  # seconds between two steps of the simulators
PROGRESS_PERIOD = 30.0  # seconds between two progress lines in the foreground
CHECK_TIMEOUT = 180.0  # seconds --check waits for the expected state
KINDS = ("transfers", "refunds", "payouts")
DEMO_FILES = frozenset({"connector.db", "connector.db-wal", "connector.db-shm", "logs"})


class DemoError(RuntimeError):
    """Setting the demo up failed; the message says what to do."""


# ================================================================ processes


@dataclass
class Child:
    """A child process and the log file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stop: Callable[[], None] | None = None  # for children started by someone else

    def is_running(self) -> bool:
        return self.process.poll() is None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_child(name: str, command: Sequence[str], env: Mapping[str, str], logs: Path) -> Child:
    """Start ``command`` in its own session (Ctrl-C reaches only us), output to a log file."""
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, process, log_path)


def stop_children(children: Sequence[Child]) -> None:
    """SIGTERM every child (newest first), wait, then SIGKILL the ones still running."""
    for child in reversed(children):
        if child.stop is not None:
            child.stop()
        elif child.is_running():
            child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in reversed(children):
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def wait_until_answering(url: str, child: Child | None, timeout: float = START_TIMEOUT) -> None:
    """Poll ``url`` until it answers below 500; fail early if ``child`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.is_running():
            raise DemoError(f"{child.name} exited with {child.process.returncode}: {tail(child)}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise DemoError(f"{url} did not answer within {timeout:.0f} s")


def tail(child: Child, lines: int = 15) -> str:
    """The last lines of a child's log, for error messages."""
    try:
        text = child.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n" + "\n".join(text.splitlines()[-lines:])


def flask_command(*args: str) -> list[str]:
    """``flask --app wsgi ARGS`` with this interpreter."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def gunicorn_command(port: int) -> list[str]:
    """The Procfile's web process, on 127.0.0.1."""
    return [
        sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "4", "--access-logfile", "-",
    ]  # fmt: skip


def run_flask(args: Sequence[str], env: Mapping[str, str], logs: Path) -> str:
    """Run ``flask --app wsgi ARGS`` to completion; return its output or raise DemoError."""
    result = subprocess.run(
        flask_command(*args), cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    with open(logs / "setup.log", "a") as log:
        log.write(f"$ flask --app wsgi {' '.join(args)}\n{output}\n")
    if result.returncode != 0:
        raise DemoError(f"flask --app wsgi {' '.join(args)} failed:\n{output.strip()}")
    return output


# ================================================================ configuration


@dataclass(frozen=True)
class Ports:
    web: int
    mirakl: int
    stripe: int
    notifications: int

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web}"


def connector_env(
    ports: Ports, redis_url: str, database_path: Path, operator_password: str
) -> dict[str, str]:
    """The connector's environment: every setting explicit, so no ``.env`` can leak in."""
    from webapp.config import SETTINGS  # the sandbox may read the connector's settings table

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SCHEDULE_", "ENABLE_")) and key != "DATABASE_URL"
    }
    env.update({setting.name: setting.default or "" for setting in SETTINGS})
    env.update({f"SCHEDULE_{job.upper().replace('-', '_')}": EVERY_MINUTE for job in JOBS})
    env.update(
        {
            "APP_ENV": "dev",
            "APP_SECRET": secrets.token_hex(16),
            "OPERATOR_PASSWORD": operator_password,
            "SCHEME": "http",
            "BASE_HOST": f"127.0.0.1:{ports.web}",
            "DATABASE_URL": f"sqlite:///{database_path}",
            "REDIS_URL": redis_url,
            "STRIPE_CLIENT_SECRET": STRIPE_SECRET_KEY,
            "STRIPE_API_BASE": f"http://127.0.0.1:{ports.stripe}",
            "MIRAKL_HOST_NAME": f"http://127.0.0.1:{ports.mirakl}",
            "MIRAKL_API_KEY": MIRAKL_API_KEY,
            "STRIPE_SELLERS_WEBHOOK_SECRET": SELLERS_WEBHOOK_SECRET,
            "STRIPE_OPERATOR_WEBHOOK_SECRET": OPERATOR_WEBHOOK_SECRET,
            "ENABLE_SELLER_ONBOARDING": "true",
            "ENABLE_PRODUCT_PAYMENT_SPLIT": "true",
            "ENABLE_PRODUCT_PAYMENT_REFUND": "true",
            "ENABLE_SERVICE_PAYMENT_SPLIT": "true",
            "ENABLE_SERVICE_PAYMENT_REFUND": "true",
            # Tax split needs a tax account mapped by hand (shop 0); the demo leaves it off.
            "ENABLE_PAYMENT_TAX_SPLIT": "false",
            "KYC_MIRAKL_SHOP_DISABLE_UPDATE": "true",
            "MAILER_DSN": "smtp://null",
            "OPERATOR_NOTIFICATION_URL": f"http://127.0.0.1:{ports.notifications}/notify",
            "PENDING_RECHECK_AFTER": "30",
            "MIRAKL_MAX_RETRIES": "2",
            "STRIPE_MAX_NETWORK_RETRIES": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def prepare_redis(redis_url: str, *, is_default: bool) -> None:
    """Check Redis answers and empty the demo's database index (never index 0).

    The default index is refused while a pytest session holds it (tests/conftest.py claims
    indexes in DB 0), so a demo never flushes a running test's queues.
    """
    parts = urlsplit(redis_url)
    index = int(parts.path.strip("/") or 0)
    if index == 0:
        raise DemoError("the demo flushes its Redis database: give one other than 0")
    try:
        if is_default:
            claims = redis.Redis.from_url(f"{parts.scheme}://{parts.netloc}/0")
            if claims.exists(f"connector-test-claim:{index}"):
                raise DemoError(
                    f"Redis database {index} is in use by a test session; "
                    "give another one with --redis-url"
                )
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        raise DemoError(
            f"Redis is not answering at {redis_url} ({exc}); start it (e.g. `redis-server`) "
            "or give --redis-url"
        ) from None


def prepare_instance(folder: Path) -> tuple[Path, Path]:
    """Start from an empty instance folder; return (database path, logs folder).

    Only a folder holding nothing but what a demo writes is emptied, never anything else.
    """
    if folder.exists():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in DEMO_FILES)
        if foreign:
            raise DemoError(
                f"{folder} holds files the demo did not write ({', '.join(foreign[:3])}); "
                "give an empty or new folder with --instance-dir"
            )
        shutil.rmtree(folder)
    logs = folder / "logs"
    logs.mkdir(parents=True)
    return folder / "connector.db", logs


# ================================================================ sandboxes and data


def seed(mirakl: MiraklControl, stripe: StripeControl) -> list[dict[str, Any]]:
    """Create the demo payments in Stripe and the marketplace in Mirakl; return the charges."""
    for currency, amount in demo_data.PLATFORM_BALANCES.items():
        stripe.set_balance("platform", currency, amount)
    charges = [stripe.create_charge(**p.charge_params()) for p in demo_data.PAYMENTS]
    charge_ids = {p.key: c["id"] for p, c in zip(demo_data.PAYMENTS, charges, strict=True)}
    dataset = demo_data.mirakl_dataset(charge_ids)
    mirakl.add_shops(dataset["shops"])
    mirakl.add_orders(dataset["orders"])
    mirakl.add_service_orders(dataset["service_orders"])
    mirakl.add_service_debits(dataset["service_debits"])
    mirakl.add_invoices(dataset["invoices"])
    return charges


ROUND = """
import sys
from wsgi import app
from webapp.jobs.scheduler import enqueue_run
with app.app_context():
    for name in sys.argv[1:]:
        print(name, "queued" if enqueue_run(name, "scheduler") else "already queued")
"""


def queue_round(env: Mapping[str, str], logs: Path) -> None:
    """Queue one run of each job now, the way the scheduler does at each cron tick."""
    command = [sys.executable, "-c", ROUND, *JOBS]
    result = subprocess.run(command, cwd=ROOT, env=dict(env), capture_output=True, text=True)
    with open(logs / "setup.log", "a") as log:
        log.write(f"$ queue a run of every job\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        raise DemoError(f"could not queue a run of every job:\n{result.stderr.strip()}")


def register_webhooks(stripe: StripeControl, web_url: str) -> None:
    """Point the Stripe sandbox's event delivery at the connector's two endpoints."""
    stripe.add_webhook_endpoint(
        f"{web_url}/api/public/webhook/sellers",
        SELLERS_WEBHOOK_SECRET,
        types=["account.updated", "payout.failed", "payout.paid"],
        connect=True,
    )
    stripe.add_webhook_endpoint(
        f"{web_url}/api/public/webhook/operator",
        OPERATOR_WEBHOOK_SECRET,
        types=["charge.succeeded", "charge.updated"],
        connect=False,
    )


def send_charge_events(web_url: str, charges: Sequence[dict[str, Any]]) -> list[int]:
    """Deliver ``charge.succeeded`` for each demo payment, as Stripe would; return statuses.

    The sandbox creates these charges through its control API, which emits no event, so the
    demo plays Stripe's part here (signed with the operator secret).
    """
    statuses = []
    for charge in charges:
        payload = json.dumps(make_event("charge.succeeded", charge)).encode()
        response = requests.post(
            f"{web_url}/api/public/webhook/operator",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(payload, OPERATOR_WEBHOOK_SECRET),
            },
            timeout=30,
        )
        statuses.append(response.status_code)
    return statuses


# ================================================================ simulators


@dataclass
class SellerSimulator:
    """Once a seller's account exists it gets its starting balance and the seller finishes
    Stripe onboarding (all but :data:`demo_data.NEVER_ONBOARDED`); the bank returns the first
    payout of the shops in :data:`demo_data.BANK_REJECTS_FIRST_PAYOUT`."""

    stripe: StripeControl
    say: Callable[[str], None]
    seen: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)

    def step(self) -> None:
        for account in self.stripe.objects("accounts"):
            shop_id = _shop_id(account)
            if shop_id is None or shop_id in self.seen:
                continue
            self.seen.add(shop_id)
            self._credit(account["id"], demo_data.STARTING_BALANCES.get(shop_id, 0))
            if shop_id not in demo_data.NEVER_ONBOARDED:
                self.stripe.complete_onboarding(account["id"])
                self.say(f"seller of shop {shop_id} finished Stripe onboarding ({account['id']})")
        for payout in self.stripe.objects("payouts"):
            shop_id = _shop_id(payout)
            if shop_id not in demo_data.BANK_REJECTS_FIRST_PAYOUT or shop_id in self.rejected:
                continue
            if payout.get("status") not in ("pending", "in_transit"):
                continue
            self.stripe.fail_payout(payout["id"])
            self.rejected.add(shop_id)
            self.say(f"the bank returned payout {payout['id']} of shop {shop_id}")

    def _credit(self, account_id: str, amount: int) -> None:
        if amount <= 0:
            return
        balance = self.stripe.balance(account_id)
        current = sum(b["amount"] for b in balance.get("available", []) if b["currency"] == "eur")
        self.stripe.set_balance(account_id, "eur", current + amount)


def _shop_id(obj: Mapping[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("miraklShopId")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class NotificationSink:
    """The operator's notification endpoint: records what the connector POSTs to it."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    sink.record(json.loads(body or b"{}"), log_path)
                finally:
                    self.send_response(200)
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet: notifications are logged by ``record``."""

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, body: dict[str, Any], log_path: Path) -> None:
        self.received.append(body)
        with open(log_path, "a") as log:
            log.write(json.dumps(body, sort_keys=True) + "\n")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ================================================================ progress


@dataclass
class Progress:
    """What the console shows: counts per kind and status, and a few totals."""

    statuses: dict[str, Counter[str]]
    shops: int = 0
    shops_onboarded: int = 0
    payments: Counter[str] = field(default_factory=Counter)
    job_runs: Counter[str] = field(default_factory=Counter)
    webhooks: Counter[str] = field(default_factory=Counter)  # "type status" → count
    notifications: int = 0

    def count(self, kind: str, status: str) -> int:
        prefix = {"transfers": "TRANSFER_", "refunds": "REFUND_", "payouts": "PAYOUT_"}[kind]
        return self.statuses[kind][prefix + status]

    def is_complete(self) -> bool:
        """The state ``make demo`` promises within a couple of minutes."""
        return (
            self.shops_onboarded >= 3
            and self.payments["captured"] >= 1
            and self.payments["to_capture"] == 0
            and all(self.count(kind, "CREATED") >= 1 for kind in KINDS)
            and self.count("transfers", "FAILED") >= 1
            and self.count("payouts", "FAILED") >= 1
            and self.count("payouts", "ON_HOLD") >= 1
            and self.webhooks["account.updated processed"] >= 3
            and self.webhooks["payout.failed processed"] >= 1
            and self.notifications >= 1
        )

    def line(self) -> str:
        parts = [f"shops onboarded {self.shops_onboarded}/{self.shops}"]
        parts.append(f"payments captured {self.payments['captured']}")
        for kind in KINDS:
            created, failed = self.count(kind, "CREATED"), self.count(kind, "FAILED")
            parts.append(f"{kind} {created} created/{failed} failed")
        parts.append(f"on hold {sum(self.count(k, 'ON_HOLD') for k in KINDS)}")
        return ", ".join(parts)


def collect_progress(web_url: str, token: str, database: Path) -> Progress:
    """Counts from the operator API (money rows, mappings) and the database (payments, runs)."""
    session = requests.Session()
    session.headers.update({"X-AUTH-TOKEN": token, "Accept": "application/json"})

    def fetch(path: str) -> list[dict[str, Any]]:
        response = session.get(f"{web_url}/api/{path}?itemsPerPage=1000", timeout=10)
        response.raise_for_status()
        return response.json()

    statuses = {kind: Counter(row["status"] for row in fetch(kind)) for kind in KINDS}
    mappings = fetch("mappings")
    progress = Progress(statuses)
    progress.shops = len(demo_data.shops())
    progress.shops_onboarded = sum(1 for m in mappings if m["payoutEnabled"])
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        progress.payments = Counter(
            dict(conn.execute("SELECT status, COUNT(*) FROM payment_mapping GROUP BY status"))
        )
        progress.job_runs = Counter(
            dict(conn.execute("SELECT outcome, COUNT(*) FROM job_run GROUP BY outcome"))
        )
        query = "SELECT type || ' ' || status, COUNT(*) FROM webhook_event GROUP BY 1"
        progress.webhooks = Counter(dict(conn.execute(query)))
    return progress


def finished_runs(database: Path) -> int:
    """Job runs recorded as finished (the CLI's first sync-onboarding included)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        query = "SELECT COUNT(*) FROM job_run WHERE outcome != 'running'"
        return conn.execute(query).fetchone()[0]


def summary_table(progress: Progress) -> str:
    """Rows per kind and status, then shops, payments and job runs."""
    statuses = ("CREATED", "PENDING", "FAILED", "ON_HOLD", "ABORTED", "IGNORED")
    lines = [f"{'':10}" + "".join(f"{s:>10}" for s in statuses)]
    for kind in KINDS:
        lines.append(f"{kind:10}" + "".join(f"{progress.count(kind, s):>10}" for s in statuses))
    lines.append(f"shops onboarded: {progress.shops_onboarded}/{progress.shops}")
    lines.append("payments: " + _counts(progress.payments))
    lines.append("job runs: " + _counts(progress.job_runs))
    lines.append("webhooks: " + _counts(progress.webhooks))
    lines.append(f"operator notifications received: {progress.notifications}")
    return "\n".join(lines)


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


# ================================================================ the demo


@dataclass
class Demo:
    """Everything the demo started, to stop it all at the end."""

    args: argparse.Namespace
    children: list[Child] = field(default_factory=list)
    sink: NotificationSink | None = None
    ports: Ports | None = None
    database: Path | None = None
    logs: Path | None = None
    operator_password: str = ""
    admin_password: str = ""
    env: dict[str, str] = field(default_factory=dict)
    caught_up: bool = False
    owns_redis: bool = False  # flushed at start, so flushed again at the end

    def say(self, message: str) -> None:
        print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def set_up(self) -> SellerSimulator:
        """Sandboxes and data, database and console user, web, first runs, workers, scheduler.

        The web app boots while the database is built, and a first run of every job is queued
        before the workers start, so the demo does not wait for the first cron minute.
        """
        args = self.args
        prepare_redis(args.redis_url, is_default=args.redis_url == DEFAULT_REDIS_URL)
        self.owns_redis = True
        self.database, self.logs = prepare_instance(Path(args.instance_dir).resolve())
        self.ports = Ports(args.port or free_port(), free_port(), free_port(), free_port())
        self.say(f"starting the Mirakl and Stripe sandboxes (logs in {self.logs})")
        stripe, charges = self.start_sandboxes()
        self.say(f"seeded {len(demo_data.shops())} shops, orders, refunds, invoices and payments")
        self.sink = NotificationSink(self.ports.notifications, self.logs / "notifications.log")
        self.operator_password = secrets.token_urlsafe(18)
        env = connector_env(self.ports, args.redis_url, self.database, self.operator_password)
        web = self.start("web", gunicorn_command(self.ports.web), env)
        self.say("building the database, the console user and the sellers' Stripe accounts")
        run_flask(["db", "upgrade"], env, self.logs)
        self.admin_password = create_admin(env, self.logs)
        run_flask(["connector", "sync-onboarding"], env, self.logs)
        wait_until_answering(f"{self.ports.web_url}/healthz", web)
        register_webhooks(stripe, self.ports.web_url)
        statuses = Counter(send_charge_events(self.ports.web_url, charges))
        self.say(f"customers paid: {len(charges)} charge.succeeded events ({_counts(statuses)})")
        simulator = SellerSimulator(stripe, self.say)
        simulator.step()
        self.env = env
        queue_round(env, self.logs)
        for number in range(1, args.workers + 1):
            self.start(f"worker-{number}", flask_command("connector", "worker"), env)
        self.start("scheduler", flask_command("connector", "scheduler"), env)
        self.say("web, workers and scheduler started; a first run of every job is queued")
        return simulator

    def catch_up(self) -> None:
        """Queue a second round as soon as the first is done, rather than wait for the next
        cron minute: payouts go out once the invoice transfers of the first round exist."""
        if self.caught_up or finished_runs(self.database) < len(JOBS) + 1:
            return
        self.caught_up = True
        queue_round(self.env, self.logs)
        self.say("first round done; a second one is queued (then every minute on the minute)")

    def start_sandboxes(self) -> tuple[StripeControl, list[dict[str, Any]]]:
        """Mirakl (a child requiring the demo's key) and Stripe, seeded; return the charges."""
        mirakl_url = f"http://127.0.0.1:{self.ports.mirakl}"
        command = [sys.executable, "-m", "sandbox.mirakl", "--host", "127.0.0.1"]
        command += ["--port", str(self.ports.mirakl), "--api-key", MIRAKL_API_KEY]
        mirakl = self.start("mirakl", command, os.environ)
        handle = start_stripe(self.ports.stripe)
        self.children.append(Child("stripe", handle.process, Path("-"), stop=handle.stop))
        wait_until_answering(f"{mirakl_url}/_sandbox/state", mirakl)
        stripe = StripeControl(handle.url)
        return stripe, seed(MiraklControl(mirakl_url), stripe)

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> Child:
        child = start_child(name, command, env, self.logs)
        self.children.append(child)
        return child

    def banner(self) -> str:
        ports = self.ports
        return "\n".join(
            [
                "",
                "=" * 72,
                "  Stripe Connector for Mirakl: demo running",
                "",
                f"  Console          {ports.web_url}/console",
                f"  E-mail           {ADMIN_EMAIL}",
                f"  Password         {self.admin_password}",
                f"  Operator API     {ports.web_url}/api/transfers "
                f"(X-AUTH-TOKEN: {self.operator_password})",
                f"  Mirakl sandbox   http://127.0.0.1:{ports.mirakl}  (/_sandbox/state)",
                f"  Stripe sandbox   http://127.0.0.1:{ports.stripe}  (/_sandbox/objects/...)",
                f"  Logs             {self.logs}",
                "",
                "  Every job runs every minute. Within a minute or two the console shows",
                "  shops onboarded, payments validated and captured, transfers, refunds and",
                "  payouts created, and failures to retry: a transfer Stripe refused",
                "  (DEMO-1006-A), an order paid in the wrong currency (DEMO-1005-A), a shop",
                "  that never finished onboarding (shop 4), payouts the bank returned or the",
                "  balance could not cover. Open Transfers / Payouts, filter on FAILED or",
                "  ON_HOLD, read the reason, select rows and use Retry.",
                "",
                "  Press Ctrl-C to stop everything.",
                "=" * 72,
                "",
            ]
        )

    def progress(self) -> Progress:
        progress = collect_progress(self.ports.web_url, self.operator_password, self.database)
        progress.notifications = len(self.sink.received) if self.sink else 0
        return progress

    def dead_child(self) -> Child | None:
        return next((child for child in self.children if not child.is_running()), None)

    def tear_down(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not orphan any
            signal.signal(signum, signal.SIG_IGN)
        if self.children:
            self.say("stopping web, workers, scheduler and sandboxes")
        stop_children(self.children)
        if self.sink is not None:
            self.sink.stop()
        if self.owns_redis:  # the queues and schedules of this run mean nothing any more
            try:
                redis.Redis.from_url(self.args.redis_url, socket_connect_timeout=2).flushdb()
            except redis.RedisError:
                pass


def create_admin(env: Mapping[str, str], logs: Path) -> str:
    """Create the console user with a generated password; return the password."""
    output = run_flask(["connector", "create-admin", ADMIN_EMAIL, "--generate"], env, logs)
    match = re.search(r"password \(shown once\): (\S+)", output)
    if match is None:
        raise DemoError(f"create-admin did not print a password:\n{output}")
    return match.group(1)


def run_foreground(demo: Demo, simulator: SellerSimulator, deadline: float | None) -> bool:
    """Step the simulators and report progress until Ctrl-C, a dead child, or ``deadline``
    (``--check``: until the expected state); return whether the expected state was reached."""
    next_report = time.monotonic() + PROGRESS_PERIOD
    while True:
        dead = demo.dead_child()
        if dead is not None:
            demo.say(f"{dead.name} exited with {dead.process.returncode}: {tail(dead)}")
            return False
        now = time.monotonic()
        try:
            simulator.step()
            demo.catch_up()
            progress = demo.progress() if deadline is not None or now >= next_report else None
        except (requests.RequestException, sqlite3.Error, RuntimeError) as exc:
            demo.say(f"(will try again: {exc})")  # e.g. a sandbox or the web app is busy
            progress = None
        if progress is not None and now >= next_report:
            demo.say(progress.line())
            next_report = now + PROGRESS_PERIOD
        if deadline is not None and progress is not None and progress.is_complete():
            return True
        if deadline is not None and now >= deadline:
            return False
        time.sleep(SIMULATOR_PERIOD)


def print_summary(demo: Demo) -> None:
    """The final counts, when the web app and the database can still tell them."""
    try:
        print(summary_table(demo.progress()), flush=True)
    except (requests.RequestException, sqlite3.Error) as exc:
        demo.say(f"no summary: {exc}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.demo",
        description="Run the connector (web, workers, scheduler) on the sandboxes, with demo data.",
    )
    parser.add_argument("--port", type=int, default=0, help="web app port (default: a free one)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed at start")
    parser.add_argument("--instance-dir", default=str(DEFAULT_INSTANCE), help="emptied at start")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument(
        "--check", action="store_true", help="smoke test: exit 0 once the demo state is reached"
    )
    parser.add_argument(
        "--timeout", type=float, default=CHECK_TIMEOUT, help="--check gives up after (s)"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops the demo like Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status (0 stopped or check passed, 1 check failed or a
    process died, 2 the demo could not be set up)."""
    args = parse_args(argv)
    demo = Demo(args)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    started = time.monotonic()
    try:
        simulator = demo.set_up()
        print(demo.banner(), flush=True)
        reached = run_foreground(demo, simulator, started + args.timeout if args.check else None)
        print_summary(demo)
        if args.check:
            verdict = "reached" if reached else "NOT reached"
            demo.say(f"check: demo state {verdict} after {time.monotonic() - started:.0f} s")
        return 0 if reached else 1
    except DemoError as exc:
        demo.say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print(flush=True)
        if demo.admin_password:  # the web app is up: show where things stand
            print_summary(demo)
        return 0
    finally:
        demo.tear_down()


if __name__ == "__main__":
    sys.exit(main())
