"""The deploy check: the wheel installed alone, the Procfile run as written, SIGTERM at the end.

Slow by nature (a venv, real gunicorn, RQ and rq-scheduler processes, one cron minute), so
everything one boot can show is shown by one boot.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from sandbox.mirakl.demo import make_product_order, make_shop
from tests.deploy.harness import (
    Deploy,
    Release,
    build_env,
    clean_env,
    locked_pins,
    normalized,
    wait_for,
)
from tests.seeding import create_ready_account, fund_platform
from webapp import create_app
from webapp.extensions import db
from webapp.jobs.scheduler import enqueue_run
from webapp.jobs.worker import SHUTDOWN_GRACE
from webapp.models import AccountMapping, JobRun, StripeTransfer, TransferStatus, TransferType
from webapp.services.dispatch.money_jobs import dispatch
from webapp.services.ledger import transitions

pytestmark = pytest.mark.deploy

SECRET_TOKEN = "f" * 64  # a well-formed onboarding token, unknown: must never reach a log
IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import webapp, wsgi
from flask.cli import cli
from webapp.jobs.cli import connector_cli
missing = []
for module in pkgutil.walk_packages(webapp.__path__, "webapp."):
    try:
        importlib.import_module(module.name)
    except Exception as exc:
        missing.append(f"{module.name}: {type(exc).__name__}: {exc}")
if not webapp.__file__.startswith(sys.prefix):
    missing.append("webapp imported from " + webapp.__file__)
for name in sorted(connector_cli.commands):
    try:
        cli.main(["--app", "wsgi", "connector", name, "--help"], standalone_mode=False)
    except Exception as exc:
        missing.append(f"connector {name} --help: {type(exc).__name__}: {exc}")
print("\\n".join(missing) or "all imported")
"""


@contextmanager
def app_of(deploy: Deploy) -> Iterator[Flask]:
    """This process's app on the deploy's configuration (built once), to seed and inspect."""
    if deploy.app is None:
        deploy.app = create_app(deploy.config)
    with deploy.app.app_context():
        yield deploy.app
        db.session.remove()


def released(deploy: Deploy) -> None:
    result = deploy.run_once("release")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_installs_exactly_the_locked_closure_of_the_declared_dependencies(
    release: Release,
):
    """Installed from the wheel's own metadata (the lock only as constraints), the venv holds
    every package of requirements.txt at its pinned version and nothing else: the lock is
    current, and a platform installing requirements.txt gets what pip install . gets."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(release.bin / "python"), "freeze"],
        capture_output=True,
        text=True,
        check=True,
        env=build_env(),
    ).stdout.splitlines()
    installed = {
        normalized(name) + "==" + version
        for name, _, version in (line.partition("==") for line in frozen if "==" in line)
        if normalized(name) != "stripe-mirakl-connector"
    }
    assert installed == locked_pins(), "run `make lock` (pyproject.toml and the lock differ)"


def test_the_installed_wheel_imports_every_module_and_every_command_answers_help(
    release: Release, base_env: dict[str, str], tmp_path
):
    env = clean_env(release.venv, base_env)
    checked = subprocess.run(
        [str(release.bin / "python"), "-c", IMPORT_EVERYTHING],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().splitlines()[-1] == "all imported", checked.stdout
    for args in (["connector", "--help"], ["db", "--help"]):
        answer = subprocess.run(
            ["flask", "--app", "wsgi", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert answer.returncode == 0, answer.stderr
    assert "upgrade" in answer.stdout


def seed(deploy: Deploy, stripe, mirakl) -> dict[str, str]:
    """Shop 2 waits in Mirakl for its account; shop 1 (connected) has an order to pay."""
    with app_of(deploy):
        account = create_ready_account("deploy-check-shop-1")
        db.session.add(AccountMapping(mirakl_shop_id=1, stripe_account_id=account))
        db.session.commit()
    charge = stripe.create_charge(amount=8472, currency="eur")["id"]
    mirakl.add_orders([make_product_order("DEPLOY-1-A", transaction_number=charge, shop_id=1)])
    mirakl.add_shops([make_shop(2)])
    return {"account": account, "charge": charge}


def stripe_url_of_shop_2(mirakl) -> str | None:
    shop = next(s for s in mirakl.state()["shops"] if s["shop_id"] == 2)
    fields = {f["code"]: f.get("value") for f in shop.get("shop_additional_fields") or []}
    return fields.get("stripe-url")


def transfer_row(deploy: Deploy) -> StripeTransfer | None:
    with app_of(deploy):
        return db.session.execute(
            select(StripeTransfer).where(StripeTransfer.mirakl_id == "DEPLOY-1-A")
        ).scalar_one_or_none()


def test_the_procfile_boots_schedules_pays_once_and_stops_on_sigterm(deploy, stripe, mirakl):
    began = time.monotonic()
    released(deploy)
    seeded = seed(deploy, stripe, mirakl)
    base = f"http://127.0.0.1:{deploy.config['PORT']}"

    for name in ("web", "worker", "scheduler"):
        deploy.start(name)
    scheduler_started = deploy.processes["scheduler"].started

    def healthy():
        try:
            return requests.get(f"{base}/healthz?deep=1", timeout=10).status_code == 200
        except requests.RequestException:  # not listening yet, or its workers still booting
            return False

    wait_for(healthy, 60, "/healthz?deep=1 to answer 200", deploy.tails)
    deep = requests.get(f"{base}/healthz?deep=1", timeout=10).json()
    assert deep == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "mirakl": "ok", "stripe": "ok"},
    }
    # Templates come with the wheel; a refresh link's token stays out of the access log.
    login = requests.get(f"{base}/console/login", timeout=10)
    assert login.status_code == 200 and "csrf_token" in login.text
    refresh = requests.get(
        f"{base}/api/public/onboarding/refresh?token={SECRET_TOKEN}",
        headers={"X-Forwarded-For": "203.0.113.77"},
        timeout=10,
    )
    assert refresh.status_code == 400

    # No CLI call from here on: the scheduler's own cron ticks make the worker run the jobs.
    wait_for(lambda: stripe_url_of_shop_2(mirakl), 100, "shop 2's stripe-url", deploy.tails)
    onboarded = time.monotonic() - scheduler_started
    row = wait_for(
        lambda: (r := transfer_row(deploy)) and r.status == "TRANSFER_CREATED" and r,
        60,
        "the seeded order's transfer",
        deploy.tails,
    )
    paid = time.monotonic() - scheduler_started

    with app_of(deploy):
        mapping = db.session.execute(
            select(AccountMapping).where(AccountMapping.mirakl_shop_id == 2)
        ).scalar_one()
        runs = db.session.execute(select(JobRun.job, JobRun.trigger, JobRun.outcome)).all()
    assert stripe_url_of_shop_2(mirakl) == mapping.onboarding_url
    assert any(a["id"] == mapping.stripe_account_id for a in stripe.objects("accounts"))
    transfers = [
        t for t in stripe.objects("transfers") if t["metadata"]["miraklId"] == "DEPLOY-1-A"
    ]
    assert len(transfers) == 1
    assert (transfers[0]["amount"], transfers[0]["destination"]) == (8073, seeded["account"])
    assert transfers[0]["id"] == row.transfer_id
    assert {(job, trigger) for job, trigger, _ in runs} >= {
        ("sync-onboarding", "scheduler"),
        ("process-transfer", "scheduler"),
    }
    assert {trigger for _, trigger, _ in runs} == {"scheduler"}

    stopped = deploy.terminate(["web", "worker", "scheduler"])

    assert stopped == {name: (0, stopped[name][1]) for name in stopped}, deploy.tails()
    assert all(seconds < 30 for _, seconds in stopped.values())
    assert not [name for name in deploy.processes if deploy.is_group_alive(name)]
    access = deploy.processes["web"].output()
    assert '"GET /api/public/onboarding/refresh HTTP/1.1" 400' in access
    assert SECRET_TOKEN not in access and "token=" not in access
    assert "203.0.113.77 " in access  # the client named by the trusted router, not the router
    assert len(stripe.objects("transfers")) == 1
    print(
        f"\ndeploy check: release built and installed in {deploy.release.seconds:.0f} s; "
        f"scheduler start → stripe-url in Mirakl {onboarded:.0f} s, → transfer created "
        f"{paid:.0f} s; stopped {stopped}; test {time.monotonic() - began:.0f} s"
    )


def test_a_worker_stopped_during_a_money_job_finishes_it(deploy, stripe, mirakl):
    """SIGTERM while the transfer's Stripe call is in flight: the worker finishes the job,
    records it, and exits 0; the money moved once."""
    released(deploy)
    with app_of(deploy):
        account = {"id": create_ready_account("acct:sig:1")}
        fund_platform()  # an invoice credit is paid from the platform's balance
        mapping = AccountMapping(mirakl_shop_id=1, stripe_account_id=account["id"])
        db.session.add(mapping)
        row = StripeTransfer(
            mirakl_id="INV-SIGTERM",
            type=TransferType.EXTRA_CREDITS.value,
            amount=4321,
            currency="eur",
            account_mapping=mapping,
            mirakl_shop_id=1,
        )
        transitions.create(row, TransferStatus.PENDING)
        db.session.commit()
        row_id = row.id
        assert dispatch("transfer", [row_id], inline=False) == 1
    stripe.set_faults(latency_ms=4000, paths=["/v1/transfers"], methods=["POST"])
    worker = deploy.start("worker")

    def in_flight():
        with app_of(deploy):
            return db.session.get(StripeTransfer, row_id).attempted_at is not None

    wait_for(in_flight, 30, "the money job to claim its row", deploy.tails)
    time.sleep(1)  # inside the 4-second Stripe call
    (code, seconds) = deploy.terminate(["worker"])["worker"]

    assert code == 0, worker.output()
    assert seconds < 30
    assert not deploy.is_group_alive("worker")
    with app_of(deploy):
        stored = db.session.get(StripeTransfer, row_id)
        assert stored.status == "TRANSFER_CREATED"
        assert [t["id"] for t in stripe.objects("transfers")] == [stored.transfer_id]


def test_a_worker_stopped_during_a_stuck_money_job_exits_in_time_and_the_next_run_pays_once(
    deploy, stripe, mirakl
):
    """Stripe answers after 25 s: the worker abandons the job SHUTDOWN_GRACE seconds after
    SIGTERM and exits 0 before the platform's SIGKILL; the row stays PENDING with its claim,
    and the next run looks the transfer up in Stripe instead of paying again."""
    deploy.config["PENDING_RECHECK_AFTER"] = "1"
    released(deploy)
    seed(deploy, stripe, mirakl)
    with app_of(deploy):
        assert enqueue_run("process-transfer", "scheduler")
    stripe.set_faults(latency_ms=25_000, paths=["/v1/transfers"], methods=["POST"])
    worker = deploy.start("worker")
    row = wait_for(
        lambda: (r := transfer_row(deploy)) and r.attempted_at and r,
        60,
        "the money job to claim its row",
        deploy.tails,
    )
    called = time.monotonic()
    time.sleep(1)

    (code, seconds) = deploy.terminate(["worker"])["worker"]

    assert code == 0, worker.output()
    assert SHUTDOWN_GRACE <= seconds < 30
    assert "abandoned" in worker.output()
    assert transfer_row(deploy).status == "TRANSFER_PENDING"
    time.sleep(max(0.0, called + 26 - time.monotonic()))  # Stripe's answer went nowhere
    stripe.clear_faults()

    rerun = deploy.run_once_command("flask --app wsgi connector process-transfer")

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    paid = transfer_row(deploy)
    assert paid.status == "TRANSFER_CREATED"
    transfers = stripe.objects("transfers")
    assert [t["id"] for t in transfers] == [paid.transfer_id]
    assert row.id == paid.id
