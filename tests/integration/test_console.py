"""The operator console over the Flask test client: login, CSRF, retry, abort/ignore, run now."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from sandbox.mirakl.demo import make_product_order
from tests.seeding import sandbox
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.jobs.scheduler import RUN_ID_PREFIX
from webapp.models import (
    AccountMapping,
    JobRun,
    LoginThrottle,
    OperationEvent,
    OperatorUser,
    RefundStatus,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.access.users import create_user
from webapp.services.clients import get_stripe
from webapp.services.dispatch import retries
from webapp.services.dispatch.money_jobs import job_id
from webapp.services.ledger import transitions
from webapp.services.queueing.queues import JOBS_QUEUE, MONEY_QUEUE, get_queue
from webapp.views.auth import REFUSED

EMAIL, PASSWORD = "ops@example.com", "correct horse battery"
SPLIT_ON = {"ENABLE_PRODUCT_PAYMENT_SPLIT": "true"}
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


@pytest.fixture
def split_app(make_app) -> Iterator[Flask]:
    app = make_app(**SPLIT_ON)
    with app.app_context():
        yield app


def csrf_token(client: FlaskClient, url: str = "/console/login") -> str:
    page = client.get(url)
    return CSRF_INPUT.search(page.get_data(as_text=True)).group(1)


def log_in(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post(
        "/console/login", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.fixture
def operator(split_app: Flask) -> FlaskClient:
    """A test client logged in as an operator."""
    create_user(EMAIL, PASSWORD)
    client = split_app.test_client()
    assert log_in(client).status_code == 302
    return client


def add_transfer(mirakl_id: str, status: TransferStatus, reason: str | None = None, **fields):
    row = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id=mirakl_id, **fields)
    if status in (TransferStatus.FAILED,):
        transitions.create(row, TransferStatus.PENDING, None, actor="test")
        transitions.transition(row, status, reason, actor="test")
    else:
        transitions.create(row, status, reason, actor="test")
    db.session.commit()
    return row.id


def post_action(client: FlaskClient, view: str, action: str, ids: list[int], **extra):
    data = {"action": action, "rowid": [str(i) for i in ids], **extra}
    data.setdefault("csrf_token", csrf_token(client, f"/console/{view}/"))
    return client.post(f"/console/{view}/action/", data=data, follow_redirects=True)


def fresh(model: type, row_id: int):
    db.session.expire_all()
    return db.session.get(model, row_id)


# ---------------------------------------------------------------- access and login


@pytest.mark.parametrize(
    "url", ["/console/", "/console/transfers/", "/console/shops/", "/console/jobs/"]
)
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")


def test_anonymous_run_now_is_refused_and_nothing_is_queued(client, app):
    token = csrf_token(client)
    response = client.post(
        "/console/jobs/run", data={"job": "process-transfer", "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")
    assert get_queue(JOBS_QUEUE).count == 0


def test_login_then_the_dashboard_shows_the_environment_but_never_the_key(client, app):
    create_user(EMAIL, PASSWORD)
    response = log_in(client)
    assert (response.status_code, response.headers["Location"]) == (302, "/console/")
    page = client.get("/console/").get_data(as_text=True)
    assert "Stripe TEST mode" in page
    assert app.config["MIRAKL_HOST_NAME"] in page
    assert "sk_test_connector" not in page
    assert "mirakl-operator-key" not in page
    assert EMAIL in page


def test_session_cookie_is_http_only_and_same_site(client, app):
    create_user(EMAIL, PASSWORD)
    response = log_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # APP_ENV=test serves plain HTTP
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_session_cookie_is_secure_outside_dev_and_test(make_app):
    assert make_app(APP_ENV="prod").config["SESSION_COOKIE_SECURE"] is True


def test_five_wrong_passwords_lock_the_account_with_a_generic_message(client, app):
    create_user(EMAIL, PASSWORD)
    for _ in range(5):
        response = log_in(client, password="wrong password")
        assert response.status_code == 401
        assert REFUSED in response.get_data(as_text=True)
    counter = db.session.execute(
        select(LoginThrottle).where(LoginThrottle.key.startswith("account-ip:"))
    ).scalar_one()
    assert counter.locked_until > utcnow() + timedelta(minutes=4)

    # Locked: the right password is refused with the same message as an unknown e-mail.
    locked = log_in(client)
    unknown = log_in(client, email="nobody@example.com")
    assert locked.status_code == unknown.status_code == 401
    assert REFUSED in locked.get_data(as_text=True)
    assert REFUSED in unknown.get_data(as_text=True)
    assert client.get("/console/").status_code == 302

    # Once the lock expires, the right password works.
    counter.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert log_in(client).status_code == 302
    assert client.get("/console/").status_code == 200


def test_login_never_redirects_to_another_site(client, app):
    create_user(EMAIL, PASSWORD)
    token = csrf_token(client)
    response = client.post(
        "/console/login?next=https://evil.example.com/",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/console/"


def test_logout_ends_the_session(operator):
    token = csrf_token(operator, "/console/")
    assert operator.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert operator.get("/console/").status_code == 302


def test_create_admin_generates_a_password_printed_once(app, runner):
    result = runner.invoke(args=["connector", "create-admin", "Admin@Example.com", "--generate"])
    assert result.exit_code == 0, result.output
    password = re.search(r"password \(shown once\): (\S+)", result.output).group(1)
    user = db.session.execute(select(OperatorUser)).scalar_one()
    assert user.email == "admin@example.com"
    assert password not in user.password_hash
    client = app.test_client()
    assert log_in(client, "admin@example.com", password).status_code == 302

    again = runner.invoke(args=["connector", "create-admin", "admin@example.com", "--generate"])
    assert again.exit_code == 1
    assert "already has an account" in again.output


def test_create_admin_prompts_for_the_password(app, runner):
    result = runner.invoke(
        args=["connector", "create-admin", "ops@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output.split("Repeat for confirmation:")[-1]
    assert log_in(app.test_client()).status_code == 302


# ---------------------------------------------------------------- CSRF


def test_forms_posted_without_csrf_token_are_refused(operator):
    row_id = add_transfer("C-1-A", TransferStatus.FAILED, "Insufficient funds")
    response = operator.post(
        "/console/transfers/action/", data={"action": "abort", "rowid": str(row_id), "reason": "x"}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert fresh(StripeTransfer, row_id).status == "TRANSFER_FAILED"

    refused_login = operator.post("/console/login", data={"email": EMAIL, "password": PASSWORD})
    assert refused_login.status_code == 400
    refused_run = operator.post("/console/jobs/run", data={"job": "process-transfer"})
    assert refused_run.status_code == 400
    assert get_queue(JOBS_QUEUE).count == 0


def test_machine_endpoints_are_exempt_from_csrf(client, app):
    # A webhook is authenticated by its Stripe signature: the answer is the signature check's.
    response = client.post("/api/public/webhook/sellers", data=b"{}")
    assert response.status_code == 400
    assert "CSRF" not in response.get_data(as_text=True)
    api = client.post("/api/mappings", json={}, headers={"X-AUTH-TOKEN": "operator-password"})
    assert "CSRF" not in api.get_data(as_text=True)
    assert api.status_code in (201, 400)  # the API's own validation answers


# ---------------------------------------------------------------- retry, abort, ignore


def test_retry_refuses_created_rows(operator):
    created = add_transfer("K-1-A", TransferStatus.CREATED, transfer_id="tr_done")

    outcome = retries.retry("transfer", [created], actor=EMAIL)
    assert outcome.queued == 0
    assert outcome.unchanged == {
        created: "already TRANSFER_CREATED: its money moved, it cannot be retried"
    }

    page = post_action(operator, "transfers", "retry", [created]).get_data(as_text=True)
    assert "cannot be retried" in page
    row = fresh(StripeTransfer, created)
    assert (row.status, row.queued_at) == ("TRANSFER_CREATED", None)
    assert get_queue(MONEY_QUEUE).count == 0
    # A CREATED row gets no Retry button.
    listing = operator.get("/console/transfers/").get_data(as_text=True)
    assert "retry-row" not in listing


def test_retry_unknown_row_and_unknown_kind(operator):
    assert retries.retry("transfer", [404], actor=EMAIL).unchanged == {
        404: "transfer 404 doesn't exist"
    }
    with pytest.raises(ValueError, match="unknown kind"):
        retries.retry("capture", [1], actor=EMAIL)


def test_retry_of_a_failed_transfer_re_evaluates_and_queues_it(operator, mirakl, stripe):
    charge = stripe.create_charge(amount=8472, currency="eur")["id"]
    mirakl.add_orders([make_product_order("F-1-A", transaction_number=charge)])
    account = get_stripe().create_account(
        {"type": "express", "country": "FR"}, idempotency_key="console-test-account"
    )["id"]
    sandbox().ready_account(account)
    mapping = AccountMapping(mirakl_shop_id=1, stripe_account_id=account)
    db.session.add(mapping)
    db.session.commit()
    failed = add_transfer(
        "F-1-A", TransferStatus.FAILED, "Insufficient funds in Stripe account.",
        account_mapping_id=mapping.id, mirakl_shop_id=1, amount=8073, currency="eur",
        transaction_id=charge, transfer_group="F-1",
    )  # fmt: skip
    listing = operator.get("/console/transfers/").get_data(as_text=True)
    assert "retry-row" in listing
    assert "80.73 EUR" in listing

    page = post_action(operator, "transfers", "retry", [failed]).get_data(as_text=True)

    assert "1 transfer(s) queued for retry." in page
    row = fresh(StripeTransfer, failed)
    assert row.status == "TRANSFER_PENDING"
    assert row.queued_at is not None
    assert get_queue(MONEY_QUEUE).job_ids == [job_id("transfer", failed)]
    history = db.session.execute(
        select(OperationEvent.to_status, OperationEvent.actor)
        .where(OperationEvent.operation == "transfer", OperationEvent.operation_id == failed)
        .order_by(OperationEvent.id)
    ).all()
    assert history[-1] == ("TRANSFER_PENDING", EMAIL)
    assert "queued" in operator.get("/console/transfers/").get_data(as_text=True)
    assert stripe.objects("transfers") == []  # queued, not run inside the request


def test_abort_needs_a_reason_and_records_it(operator):
    failed = add_transfer("A-1-A", TransferStatus.FAILED, "Insufficient funds")
    created = add_transfer("A-2-A", TransferStatus.CREATED)

    page = post_action(operator, "transfers", "abort", [failed], reason="  ")
    assert "a reason is required" in page.get_data(as_text=True)
    assert fresh(StripeTransfer, failed).status == "TRANSFER_FAILED"

    page = post_action(
        operator, "transfers", "abort", [failed, created], reason="Paid by bank wire"
    ).get_data(as_text=True)
    assert "1 transfer(s) aborted." in page
    row = fresh(StripeTransfer, failed)
    assert row.status == "TRANSFER_ABORTED"
    assert row.status_reason == f"Paid by bank wire (by {EMAIL})"
    assert fresh(StripeTransfer, created).status == "TRANSFER_CREATED"
    event = (
        db.session.execute(
            select(OperationEvent)
            .where(OperationEvent.operation_id == failed)
            .order_by(OperationEvent.id.desc())
        )
        .scalars()
        .first()
    )
    assert (event.to_status, event.actor) == ("TRANSFER_ABORTED", EMAIL)
    details = operator.get(f"/console/transfers/details/?id={failed}").get_data(as_text=True)
    assert "Paid by bank wire" in details and "TRANSFER_FAILED" in details


def test_ignore_is_for_transfers_only(operator):
    failed = add_transfer("I-1-A", TransferStatus.FAILED, "No account")
    page = post_action(operator, "transfers", "ignore", [failed], reason="Test shop")
    assert "1 transfer(s) ignored." in page.get_data(as_text=True)
    assert fresh(StripeTransfer, failed).status == "TRANSFER_IGNORED"

    refund = StripeRefund(mirakl_refund_id="RF-1", amount=100, currency="eur")
    transitions.create(refund, RefundStatus.ON_HOLD, "Waiting", actor="test")
    db.session.commit()
    outcome = retries.ignore_rows("refund", [refund.id], "no", actor=EMAIL)
    assert outcome.unchanged == {refund.id: "only transfers can be ignored, not a refund"}
    listing = operator.get("/console/refunds/").get_data(as_text=True)
    assert 'data-action="ignore"' not in listing
    assert 'data-action="abort"' in listing


# ---------------------------------------------------------------- jobs


def test_run_now_enqueues_the_job_in_rq_once(operator):
    token = csrf_token(operator, "/console/jobs/")
    first = operator.post(
        "/console/jobs/run",
        data={"job": "process-transfer", "csrf_token": token},
        follow_redirects=True,
    )
    assert "process-transfer queued" in first.get_data(as_text=True)
    assert get_queue(JOBS_QUEUE).job_ids == [f"{RUN_ID_PREFIX}process-transfer"]
    assert db.session.execute(select(JobRun)).scalars().all() == []  # not run in the request

    again = operator.post(
        "/console/jobs/run",
        data={"job": "process-transfer", "csrf_token": token},
        follow_redirects=True,
    )
    assert "process-transfer is already queued or running." in again.get_data(as_text=True)
    assert get_queue(JOBS_QUEUE).count == 1


def test_run_now_with_redis_down_says_so(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        create_user(EMAIL, PASSWORD)
        client = app.test_client()
        log_in(client)
        token = csrf_token(client, "/console/jobs/")
        page = client.post(
            "/console/jobs/run",
            data={"job": "process-transfer", "csrf_token": token},
            follow_redirects=True,
        ).get_data(as_text=True)
    assert "process-transfer was not queued: Redis is not answering." in page
    assert "Redis is not answering: nothing can be queued" in page


def test_jobs_page_lists_every_job_with_its_schedule(operator):
    page = operator.get("/console/jobs/").get_data(as_text=True)
    for name, cron in (("process-transfer", "*/5 * * * *"), ("process-payout", "0 1 * * *")):
        assert f'data-job="{name}"' in page
        assert cron in page


def test_dashboard_counts_and_money_at_risk(operator):
    add_transfer("D-1-A", TransferStatus.FAILED, "x", amount=1234, currency="eur")
    add_transfer("D-2-A", TransferStatus.FAILED, "x", amount=1000, currency="eur")
    add_transfer("D-3-A", TransferStatus.CREATED, amount=500, currency="jpy")
    db.session.add_all(
        [
            AccountMapping(mirakl_shop_id=1, stripe_account_id="acct_1", payout_enabled=True,
                           payin_enabled=True),
            AccountMapping(mirakl_shop_id=2, stripe_account_id="acct_2",
                           disabled_reason="rejected.fraud"),
            AccountMapping(mirakl_shop_id=3, stripe_account_id="acct_3", ignored=True),
            AccountMapping(mirakl_shop_id=4, stripe_account_id="acct_4"),
            # Onboarding not finished: Stripe says requirements.past_due, which is pending.
            AccountMapping(mirakl_shop_id=5, stripe_account_id="acct_5",
                           disabled_reason="requirements.past_due"),
        ]
    )  # fmt: skip
    db.session.commit()
    page = operator.get("/console/").get_data(as_text=True)
    assert "22.34 EUR (2)" in page
    assert re.search(r"TRANSFER_FAILED</a>\s*<span[^>]*>2</span>", page)
    assert re.search(r"TRANSFER_CREATED</a>\s*<span[^>]*>1</span>", page)
    for state, count in (("onboarded", 1), ("pending", 2), ("disabled", 1), ("ignored", 1)):
        assert re.search(rf"<span>{state}</span><span[^>]*>{count}</span>", page)
    assert "never ran" in page


def test_lists_never_count_the_whole_table(operator, split_app):
    from webapp.views import console

    views = [v for v in split_app.extensions["admin"][0]._views if hasattr(v, "model")]
    assert views and all(v.simple_list_pager for v in views)
    assert all(v.column_default_sort == ("id", True) for v in views)
    assert console.PAGE_SIZE == 50


def test_rq_dashboard_is_mounted_behind_the_login(client, operator, split_app):
    anonymous = client.get("/console/rq/")
    assert anonymous.status_code == 302
    assert "/console/login" in anonymous.headers["Location"]
    page = operator.get("/console/rq/")
    assert page.status_code == 200
    assert "RQ" in page.get_data(as_text=True)
    queues = operator.get("/console/rq/0/data/queues.json")
    assert queues.status_code == 200
    assert isinstance(queues.json["queues"], list)
