"""Scheduling, the job lock, workers and /healthz, with real Redis and real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from redis import Redis
from rq_scheduler import Scheduler
from sqlalchemy import select

from webapp.extensions import db
from webapp.jobs.runner import run_job
from webapp.jobs.scheduler import (
    SCHEDULE_ID_PREFIX,
    enqueue_run,
    register_schedules,
    schedules,
)
from webapp.jobs.table import job_modules
from webapp.jobs.worker import make_worker
from webapp.models import JobRun, StripeTransfer, TransferStatus, TransferType
from webapp.services.ledger import leases, transitions
from webapp.services.queueing.queues import JOBS_QUEUE, MONEY_QUEUE, get_queue, get_redis


def scheduled_ids(redis: Redis) -> list[str]:
    scheduler = Scheduler(queue_name=JOBS_QUEUE, connection=redis)
    return sorted(j.id for j in scheduler.get_jobs() if j.id.startswith(SCHEDULE_ID_PREFIX))


def test_schedules_are_registered_once_and_replaced(make_app):
    app = make_app(SCHEDULE_MONITOR_KYC_STATUS="")
    with app.app_context():
        expected = {m.NAME for m in job_modules()} - {"monitor-kyc-status"}
        scheduler = Scheduler(queue_name=JOBS_QUEUE, connection=get_redis())
        register_schedules(scheduler)
        register_schedules(scheduler)  # a restart: replaced, never duplicated
        assert scheduled_ids(get_redis()) == sorted(SCHEDULE_ID_PREFIX + n for n in expected)
    overridden = make_app(SCHEDULE_PROCESS_TRANSFER="*/10 * * * *")
    with overridden.app_context():
        if "process-transfer" in schedules():
            assert schedules()["process-transfer"] == "*/10 * * * *"


def test_a_queued_run_is_never_queued_twice(app):
    names = [m.NAME for m in job_modules()]
    if not names:
        pytest.skip("no job module exists yet")  # pragma: no cover
    assert enqueue_run(names[0], "console") is True
    assert enqueue_run(names[0], "scheduler") is False
    assert get_queue(JOBS_QUEUE).count == 1


def test_two_concurrent_runs_one_runs_one_reports_the_lock(app):
    started = []

    def slow(ctx):
        started.append(1)
        inner, inner_ctx = run_job("demo-job", lambda c: None, trigger="console")
        assert inner.outcome == "skipped"
        assert "demo-job is already running since" in inner_ctx.lines[0]

    run, _ = run_job("demo-job", slow, trigger="scheduler")
    assert run.outcome == "succeeded" and started == [1]
    outcomes = db.session.execute(select(JobRun.trigger, JobRun.outcome).order_by(JobRun.id)).all()
    assert [tuple(o) for o in outcomes] == [("scheduler", "succeeded"), ("console", "skipped")]


def test_a_killed_runs_lock_expires(make_app, base_env, tmp_path):
    app = make_app(JOB_LEASE_TTL="2")
    script = tmp_path / "holder.py"
    script.write_text(
        textwrap.dedent("""
        import sys, time, json
        from webapp import create_app
        from webapp.jobs.runner import run_job
        app = create_app(json.loads(sys.argv[1]))
        with app.app_context():
            run_job("sleeper", lambda ctx: (print("holding", flush=True), time.sleep(60)))
    """)
    )
    import json

    env = {**base_env, "JOB_LEASE_TTL": "2"}
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(env)],
        stdout=subprocess.PIPE,
        cwd=os.getcwd(),
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "holding"
        with app.app_context():
            assert leases.find("job:sleeper") is not None
            run, _ = run_job("sleeper", lambda ctx: None)
            assert run.outcome == "skipped"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while leases.find("job:sleeper") is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            run, _ = run_job("sleeper", lambda ctx: None)
            assert run.outcome == "succeeded"
    finally:
        proc.kill()


def test_the_worker_processes_queued_money_jobs(app, stripe):
    from webapp.models import AccountMapping
    from webapp.services.clients import get_stripe
    from webapp.services.dispatch.money_jobs import dispatch

    account = get_stripe().create_account({"type": "express"}, idempotency_key="acct:w:1")
    mapping = AccountMapping(mirakl_shop_id=1, stripe_account_id=account["id"])
    db.session.add(mapping)
    row = StripeTransfer(
        mirakl_id="INV-9",
        type=TransferType.EXTRA_CREDITS.value,
        amount=5678,
        currency="eur",
        account_mapping=mapping,
        mirakl_shop_id=1,
    )
    transitions.create(row, TransferStatus.PENDING)
    db.session.commit()
    assert dispatch("transfer", [row.id], inline=False) == 1
    assert dispatch("transfer", [row.id], inline=False) == 0  # already queued
    assert get_queue(MONEY_QUEUE).count == 1
    make_worker((MONEY_QUEUE,)).work(burst=True)
    db.session.expire_all()
    stored = db.session.get(StripeTransfer, row.id)
    assert stored.status == "TRANSFER_CREATED"
    assert [t["id"] for t in stripe.objects("transfers")] == [stored.transfer_id]


def test_healthz(client, make_app, base_env):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    deep = client.get("/healthz?deep=1").json
    assert deep["checks"] == {"database": "ok", "redis": "ok", "mirakl": "ok", "stripe": "ok"}
    down = make_app(
        REDIS_URL="redis://127.0.0.1:1/0",
        MIRAKL_HOST_NAME="http://127.0.0.1:1",
        MIRAKL_MAX_RETRIES="0",
    )
    body = down.test_client().get("/healthz?deep=1")
    assert body.status_code == 503
    assert body.json["checks"]["redis"].startswith("down")
    assert body.json["checks"]["mirakl"].startswith("down")
    text = body.get_data(as_text=True)
    for secret in ("operator-password", "sk_test_connector", "mirakl-operator-key", "127.0.0.1"):
        assert secret not in text


def test_cli_reports_bad_configuration_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIRAKL_", "STRIPE_"))}
    env.update(
        OPERATOR_PASSWORD="x",
        BASE_HOST="h",
        MIRAKL_API_KEY="k",
        MIRAKL_HOST_NAME="http://m",
        STRIPE_CLIENT_SECRET="not-a-key",
        DATABASE_URL=f"sqlite:///{tmp_path}/c.db",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "connector", "--help"],
        env=env,
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "configuration error: STRIPE_CLIENT_SECRET must be a Stripe secret key "
        "(sk_test_... or sk_live_...)"
    )
    assert "not-a-key" not in result.stderr
