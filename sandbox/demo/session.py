"""One run of the demo: what it starts, in which order, and how it stops it all."""

from __future__ import annotations

import argparse
import secrets
import signal
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sandbox import demo_data
from sandbox.demo.environment import (
    connector_env,
    create_admin,
    prepare_instance,
    prepare_redis,
    run_doctor,
    upgrade_database,
)
from sandbox.demo.processes import (
    Child,
    flask_command,
    free_port,
    gunicorn_command,
    queue_round,
    run_flask,
    start_child,
    stop_children,
    wait_until_answering,
)
from sandbox.demo.progress import Progress, collect_progress, finished_runs, format_counts
from sandbox.demo.sandboxes import register_webhooks, send_charge_events, start_sandboxes
from sandbox.demo.settings import ADMIN_EMAIL, DEFAULT_REDIS_URL, JOBS, Ports
from sandbox.demo.simulators import NotificationSink, SellerSimulator


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
        """Print one timestamped line of what the demo does."""
        print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def set_up(self) -> SellerSimulator:
        """Sandboxes and data, database and console user, web, first runs, workers, scheduler.

        The web app boots while the database is built, and a first run of every job is queued
        before the workers start, so the demo does not wait for the first cron minute.
        """
        args = self.args
        # Only the default index is checked against test sessions: an index given on the
        # command line is the caller's choice (the demo's own test passes its session's).
        is_default = args.redis_url is None
        args.redis_url = args.redis_url or DEFAULT_REDIS_URL
        prepare_redis(args.redis_url, is_default=is_default)
        self.owns_redis = True
        self.database, self.logs = prepare_instance(Path(args.instance_dir).resolve())
        self.ports = Ports(args.port or free_port(), free_port(), free_port(), free_port())
        self.say(f"starting the Mirakl and Stripe sandboxes (logs in {self.logs})")
        stripe, charges = start_sandboxes(self.ports, self.logs, self.children)
        self.say(f"seeded {len(demo_data.shops())} shops, orders, refunds, invoices and payments")
        self.sink = NotificationSink(self.ports.notifications, self.logs / "notifications.log")
        self.operator_password = secrets.token_urlsafe(18)
        env = connector_env(self.ports, args.redis_url, self.database, self.operator_password)
        self.say("registering the connector's webhook endpoints in the Stripe sandbox")
        env.update(register_webhooks(env, self.logs))
        web = self.start("web", gunicorn_command(self.ports.web), env)
        self.say("building the database, the console user and the sellers' Stripe accounts")
        upgrade_database(env, self.logs)
        self.admin_password = create_admin(env, self.logs)
        run_flask(["connector", "sync-onboarding"], env, self.logs)
        wait_until_answering(f"{self.ports.web_url}/healthz", web)
        secret = env["STRIPE_OPERATOR_WEBHOOK_SECRET"]
        statuses = format_counts(Counter(send_charge_events(self.ports.web_url, charges, secret)))
        self.say(f"customers paid: {len(charges)} charge.succeeded events ({statuses})")
        self.report_setup(run_doctor(env, self.logs))
        simulator = SellerSimulator(stripe, self.say)
        simulator.step()
        self.env = env
        queue_round(env, self.logs)
        for number in range(1, args.workers + 1):
            self.start(f"worker-{number}", flask_command("connector", "worker"), env)
        self.start("scheduler", flask_command("connector", "scheduler"), env)
        self.say("web, workers and scheduler started; a first run of every job is queued")
        return simulator

    def report_setup(self, lines: list[str]) -> None:
        """One line for ``connector doctor``'s verdict, plus each check that failed."""
        levels = Counter(line.split(" ", 1)[0] for line in lines)
        self.say(
            f"setup checks (connector doctor): {format_counts(levels)}; "
            "the console's dashboard shows them"
        )
        for line in lines:
            if line.startswith("FAIL"):
                self.say(f"  {line}")

    def catch_up(self) -> None:
        """Queue a second round as soon as the first is done, rather than wait for the next
        cron minute: payouts go out once the invoice transfers of the first round exist."""
        if self.caught_up or finished_runs(self.database) < len(JOBS) + 1:
            return
        self.caught_up = True
        queue_round(self.env, self.logs)
        self.say("first round done; a second one is queued (then every minute on the minute)")

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start a child process whose output goes to ``logs/<name>.log``; stop it at the end."""
        child = start_child(name, command, env, self.logs)
        self.children.append(child)
        return child

    def banner(self) -> str:
        """Where to look and how to log in, printed once everything runs."""
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
        """Where the demo stands now, notifications received included."""
        progress = collect_progress(self.ports.web_url, self.operator_password, self.database)
        progress.notifications = len(self.sink.received) if self.sink else 0
        return progress

    def dead_child(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((child for child in self.children if not child.is_running()), None)

    def tear_down(self) -> None:
        """Stop every child and the notification receiver; flush the demo's Redis database."""
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
