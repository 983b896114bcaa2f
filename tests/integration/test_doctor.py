"""``connector doctor`` against the sandboxes, real PostgreSQL and Redis: each check passing
and failing, the stored result, and the scheduled run."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from datetime import timedelta

import pytest
import stripe as stripe_lib
from flask import Flask
from redis import Redis
from rq import Worker
from sqlalchemy import select

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.field_items import make_additional_field
from sandbox.stripe.control import StripeControl
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.jobs import doctor
from webapp.jobs.cli import connector_cli
from webapp.jobs.runner import run_job
from webapp.jobs.scheduler import schedules
from webapp.models import JobOutcome, SetupCheck, WebhookEvent
from webapp.services.queueing.queues import get_queue

SELLERS_URL = "http://connector.test/api/public/webhook/sellers"
OPERATOR_URL = "http://connector.test/api/public/webhook/operator"


def lines_of(output: str) -> dict[str, tuple[str, str]]:
    """``{check name: (level, message)}`` from doctor's output."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^(ok|warn|FAIL)\s+([^:]+): (.*)$", line)
        if match:
            found[match.group(2)] = (match.group(1), match.group(3))
    return found


def run_doctor(app: Flask, *args: str):
    result = app.test_cli_runner().invoke(connector_cli, ["doctor", *args])
    return result, lines_of(result.output)


@pytest.fixture
def secrets(stripe: StripeControl, mirakl: MiraklControl) -> dict[str, str]:
    """Both endpoints registered in the sandbox as register-webhooks does; their secrets."""
    client = stripe_lib.StripeClient(
        "sk_test_connector", base_addresses={"api": stripe.base_url}, max_network_retries=0
    )
    sellers = client.v1.webhook_endpoints.create(
        params={
            "url": SELLERS_URL,
            "enabled_events": ["account.updated", "payout.failed"],
            "connect": True,
        }
    )
    operator = client.v1.webhook_endpoints.create(
        params={"url": OPERATOR_URL, "enabled_events": ["charge.succeeded", "charge.updated"]}
    )
    return {
        "STRIPE_SELLERS_WEBHOOK_SECRET": sellers.secret,
        "STRIPE_OPERATOR_WEBHOOK_SECRET": operator.secret,
    }


@pytest.fixture
def healthy(make_app: Callable[..., Flask], secrets: dict[str, str]) -> Flask:
    """An app whose setup is right (no scheduler or worker: cron-style)."""
    return make_app(**secrets)


def test_a_right_setup_passes_and_is_stored(healthy: Flask) -> None:
    result, lines = run_doctor(healthy)
    assert result.exit_code == 0, result.output
    assert {name: level for name, (level, _) in lines.items()} == {
        "configuration": "ok",
        "session key": "warn",  # the test suite's APP_SECRET is short: a warning outside prod
        "database": "ok",
        "redis": "ok",
        "scheduler and workers": "warn",
        "mirakl": "ok",
        "mirakl field stripe-url": "ok",
        "mirakl field stripe-ignored": "ok",
        "stripe key": "ok",
        "stripe mode": "ok",
        "stripe connect": "ok",
        "webhook sellers": "ok",
        "webhook operator": "ok",
        "webhook sellers events": "warn",
        "webhook operator events": "warn",
        "notifications": "ok",
        "mail": "ok",
    }
    assert lines["database"][1].startswith("reachable, at the latest migration")
    assert "acct_platform (test mode)" in lines["stripe key"][1]
    with healthy.app_context():
        row = db.session.execute(select(SetupCheck)).scalar_one()
    assert row.trigger == "cli"
    assert row.outcome == "warn"
    assert len(json.loads(row.results)) == len(lines)
    assert "whsec_" not in result.output and "whsec_" not in row.results


@pytest.mark.parametrize(
    ("fields", "check", "needle"),
    [
        (
            [make_additional_field("stripe-ignored", "BOOLEAN")],
            "mirakl field stripe-url",
            "missing: create the shop custom field `stripe-url` of type LINK",
        ),
        (
            [make_additional_field("stripe-url", "STRING", shop_permission="READ_ONLY")],
            "mirakl field stripe-url",
            "of type STRING, needs LINK",
        ),
        (
            [make_additional_field("stripe-url", "LINK", shop_permission="INVISIBLE")],
            "mirakl field stripe-url",
            "sellers have INVISIBLE: they cannot see their onboarding link",
        ),
        (
            [
                make_additional_field("stripe-url", "LINK", shop_permission="READ_ONLY"),
                make_additional_field("stripe-ignored", "STRING"),
            ],
            "mirakl field stripe-ignored",
            "of type STRING, needs BOOLEAN",
        ),
    ],
)
def test_custom_field_failures(
    healthy: Flask, mirakl: MiraklControl, fields: list, check: str, needle: str
) -> None:
    mirakl.set_additional_fields(fields)
    result, lines = run_doctor(healthy)
    assert result.exit_code == 1
    assert lines[check][0] == "FAIL"
    assert needle in lines[check][1]
    assert f"error: 1 check(s) failed: {check}" in result.output


def test_missing_ignored_field_only_warns(healthy: Flask, mirakl: MiraklControl) -> None:
    mirakl.set_additional_fields(
        [make_additional_field("stripe-url", "LINK", shop_permission="READ_ONLY")]
    )
    result, lines = run_doctor(healthy)
    assert result.exit_code == 0, result.output
    assert lines["mirakl field stripe-ignored"][0] == "warn"


def test_custom_field_codes_follow_the_configuration(
    make_app: Callable[..., Flask], secrets: dict[str, str], mirakl: MiraklControl
) -> None:
    mirakl.set_additional_fields(
        [make_additional_field("psp-link", "LINK", shop_permission="READ_ONLY")]
    )
    app = make_app(MIRAKL_CUSTOM_FIELD_CODE="psp-link", **secrets)
    _, lines = run_doctor(app)
    assert lines["mirakl field psp-link"][0] == "ok"


def test_mirakl_401(healthy: Flask, mirakl: MiraklControl) -> None:
    mirakl.set_api_key("another-key")
    result, lines = run_doctor(healthy)
    assert result.exit_code == 1
    level, message = lines["mirakl"]
    assert level == "FAIL"
    assert "refused MIRAKL_API_KEY (HTTP 401)" in message
    assert "mirakl-operator-key" not in result.output
    assert "mirakl field stripe-url" not in lines  # not checked without access


def test_mirakl_unreachable(make_app: Callable[..., Flask], secrets: dict[str, str]) -> None:
    app = make_app(MIRAKL_HOST_NAME=f"http://127.0.0.1:{free_port()}", **secrets)
    result, lines = run_doctor(app)
    assert result.exit_code == 1
    assert lines["mirakl"][0] == "FAIL"
    assert "not reachable" in lines["mirakl"][1]
    assert lines["stripe key"][0] == "ok"  # the other checks still ran


def test_missing_event_type(healthy: Flask, stripe: StripeControl) -> None:
    client = stripe_lib.StripeClient(
        "sk_test_connector", base_addresses={"api": stripe.base_url}, max_network_retries=0
    )
    sellers = next(e for e in stripe.webhook_endpoints() if e["url"] == SELLERS_URL)
    client.v1.webhook_endpoints.update(
        sellers["id"], params={"enabled_events": ["account.updated"]}
    )
    result, lines = run_doctor(healthy)
    assert result.exit_code == 1
    assert lines["webhook sellers"] == (
        "FAIL",
        f"{sellers['id']} does not send payout.failed: run `flask --app wsgi connector "
        "register-webhooks`",
    )
    assert lines["webhook operator"][0] == "ok"
    assert healthy.test_cli_runner().invoke(connector_cli, ["register-webhooks"]).exit_code == 0
    assert run_doctor(healthy)[0].exit_code == 0


def test_disabled_endpoint(healthy: Flask, stripe: StripeControl) -> None:
    client = stripe_lib.StripeClient(
        "sk_test_connector", base_addresses={"api": stripe.base_url}, max_network_retries=0
    )
    operator = next(e for e in stripe.webhook_endpoints() if e["url"] == OPERATOR_URL)
    client.v1.webhook_endpoints.update(operator["id"], params={"disabled": True})
    _, lines = run_doctor(healthy)
    assert lines["webhook operator"][0] == "FAIL"
    assert "is disabled" in lines["webhook operator"][1]


def test_endpoint_for_another_host(
    make_app: Callable[..., Flask], secrets: dict[str, str], stripe: StripeControl
) -> None:
    app = make_app(BASE_HOST="new-host.test", **secrets)
    result, lines = run_doctor(app)
    assert result.exit_code == 1
    level, message = lines["webhook sellers"]
    assert level == "FAIL"
    assert message.startswith(
        f"no endpoint for http://new-host.test/api/public/webhook/sellers (only for {SELLERS_URL})"
    )
    assert lines["webhook operator"][0] == "FAIL"


def test_sellers_endpoint_without_connect(
    make_app: Callable[..., Flask], stripe: StripeControl
) -> None:
    client = stripe_lib.StripeClient(
        "sk_test_connector", base_addresses={"api": stripe.base_url}, max_network_retries=0
    )
    client.v1.webhook_endpoints.create(params={"url": SELLERS_URL, "enabled_events": ["*"]})
    _, lines = run_doctor(make_app())
    assert lines["webhook sellers"][0] == "FAIL"
    assert "does not receive Connect events" in lines["webhook sellers"][1]


def test_empty_webhook_secret(make_app: Callable[..., Flask], secrets: dict[str, str]) -> None:
    app = make_app(
        STRIPE_SELLERS_WEBHOOK_SECRET=secrets["STRIPE_SELLERS_WEBHOOK_SECRET"],
        STRIPE_OPERATOR_WEBHOOK_SECRET="",
    )
    _, lines = run_doctor(app)
    assert lines["webhook operator"][0] == "FAIL"
    assert "STRIPE_OPERATOR_WEBHOOK_SECRET is empty" in lines["webhook operator"][1]


def test_wrong_key_mode(make_app: Callable[..., Flask], secrets: dict[str, str]) -> None:
    result, lines = run_doctor(make_app(STRIPE_MODE="live", **secrets))
    assert result.exit_code == 1
    assert lines["stripe mode"] == (
        "FAIL",
        "STRIPE_CLIENT_SECRET is a test key but STRIPE_MODE is live: use the live secret "
        "key from the Stripe dashboard",
    )
    _, prod = run_doctor(make_app(APP_ENV="prod", **secrets))
    assert prod["stripe mode"][0] == "warn"  # unset STRIPE_MODE: only a hint


@pytest.mark.parametrize(
    ("app_secret", "needle"),
    [
        ("short-secret", "APP_SECRET is 12 characters long"),
        ("operator-password", "must not reuse OPERATOR_PASSWORD"),
    ],
)
def test_session_key_fails_in_production(
    make_app: Callable[..., Flask], secrets: dict[str, str], app_secret: str, needle: str
) -> None:
    result, lines = run_doctor(make_app(APP_ENV="prod", APP_SECRET=app_secret, **secrets))
    assert result.exit_code == 1
    level, message = lines["session key"]
    assert level == "FAIL" and needle in message
    assert app_secret not in result.output
    _, sound = run_doctor(make_app(APP_ENV="prod", APP_SECRET="x" * 48, **secrets))
    assert sound["session key"] == ("ok", "APP_SECRET is a dedicated secret")


def test_rejected_stripe_key(healthy: Flask, stripe: StripeControl) -> None:
    stripe.set_platform(rejected_keys=["sk_test_connector"])
    result, lines = run_doctor(healthy)
    assert result.exit_code == 1
    assert lines["stripe key"][0] == "FAIL"
    assert "use the secret key" in lines["stripe key"][1]
    assert "sk_test_connector" not in result.output


def test_platform_without_connect(healthy: Flask, stripe: StripeControl) -> None:
    stripe.set_platform(connect=False)
    result, lines = run_doctor(healthy)
    assert result.exit_code == 1
    assert lines["stripe connect"][0] == "FAIL"
    assert "activate Connect" in lines["stripe connect"][1]


def test_database_not_migrated(
    make_app: Callable[..., Flask], secrets: dict[str, str], tmp_path
) -> None:
    make_app()  # empties the test database first, as every test
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/empty.db", **secrets)
    result, lines = run_doctor(app)
    assert result.exit_code == 1
    assert lines["database"] == (
        "FAIL",
        "reachable but not migrated: run `flask --app wsgi db upgrade`",
    )
    assert "note: the result could not be stored" in result.output


def test_database_unreachable(make_app: Callable[..., Flask], secrets: dict[str, str]) -> None:
    make_app()
    url = f"postgresql://postgres:hunter22@127.0.0.1:{free_port()}/nowhere"
    result, lines = run_doctor(make_app(DATABASE_URL=url, **secrets))
    assert result.exit_code == 1
    assert lines["database"][0] == "FAIL"
    assert lines["database"][1].startswith("not reachable")
    assert lines["stripe key"][0] == "ok"
    assert "hunter22" not in result.output


def test_redis_unreachable_is_a_warning(
    make_app: Callable[..., Flask], secrets: dict[str, str]
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    result, lines = run_doctor(make_app(REDIS_URL=url, **secrets))
    assert result.exit_code == 0, result.output
    assert lines["redis"][0] == "warn"
    assert "s3cret-pw" not in result.output


def test_workers_without_scheduler(healthy: Flask) -> None:
    with healthy.app_context():
        worker = Worker([get_queue("jobs")], connection=get_queue("jobs").connection)
        worker.register_birth()
    try:
        result, lines = run_doctor(healthy)
    finally:
        worker.register_death()
    assert result.exit_code == 1
    assert lines["scheduler"][0] == "FAIL"
    assert lines["workers"][0] == "FAIL"
    assert "no worker listening on money, notifications" in lines["workers"][1]


def test_scheduler_and_workers_seen(healthy: Flask, redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    connection.set("rq:scheduler_instance:test", "1", ex=30)
    with healthy.app_context():
        worker = Worker(
            [get_queue(q) for q in ("jobs", "money", "notifications")], connection=connection
        )
        worker.register_birth()
    try:
        _, lines = run_doctor(healthy)
    finally:
        worker.register_death()
    assert lines["scheduler"][0] == "ok"
    assert lines["workers"] == ("ok", "listening on jobs, money, notifications")


def test_webhook_inbox_liveness(healthy: Flask) -> None:
    with healthy.app_context():
        for endpoint, age in (("sellers", timedelta(hours=1)), ("operator", timedelta(days=30))):
            db.session.add(
                WebhookEvent(
                    stripe_event_id=f"evt_{endpoint}",
                    type="account.updated",
                    endpoint=endpoint,
                    payload="{}",
                    received_at=utcnow() - age,
                )
            )
        db.session.commit()
    _, lines = run_doctor(healthy)
    assert lines["webhook sellers events"][0] == "ok"
    assert lines["webhook operator events"][0] == "warn"
    assert "check the endpoint's recent deliveries" in lines["webhook operator events"][1]


def test_notification_endpoint_and_mail(
    make_app: Callable[..., Flask], secrets: dict[str, str], smtp
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/notify"
    app = make_app(
        OPERATOR_NOTIFICATION_URL=closed,
        MAILER_DSN=smtp.dsn,
        TECHNICAL_ALERT_EMAIL="tech@example.com",
        **secrets,
    )
    result, lines = run_doctor(app)
    assert result.exit_code == 1
    assert lines["notifications"][0] == "FAIL"
    assert lines["mail"] == ("ok", f"SMTP 127.0.0.1:{smtp.port} answers")
    assert smtp.messages == []
    _, lines = run_doctor(app, "--send-test-mail")
    assert lines["mail"] == ("ok", "test e-mail sent to tech@example.com")
    assert len(smtp.messages) == 1


def test_smtp_down(make_app: Callable[..., Flask], secrets: dict[str, str]) -> None:
    app = make_app(MAILER_DSN=f"smtp://127.0.0.1:{free_port()}", **secrets)
    _, lines = run_doctor(app)
    assert lines["mail"][0] == "FAIL"


def test_scheduled_run_goes_through_the_runner(healthy: Flask) -> None:
    with healthy.app_context():
        run, ctx = run_job(doctor.NAME, doctor.run, trigger="scheduler", inline=False)
        row = db.session.execute(select(SetupCheck)).scalar_one()
        assert run.outcome == JobOutcome.SUCCEEDED
        assert row.trigger == "scheduler"
        assert ctx.lines[-1] == "checks: 17 run, 0 failed"
        assert any(line.startswith("ok    mirakl:") for line in ctx.lines)
        assert schedules()["doctor"] == "0 * * * *"


def test_schedule_override(make_app: Callable[..., Flask]) -> None:
    app = make_app(SCHEDULE_DOCTOR="*/15 * * * *")
    with app.app_context():
        assert schedules()["doctor"] == "*/15 * * * *"
    app = make_app(SCHEDULE_DOCTOR="")
    with app.app_context():
        assert "doctor" not in schedules()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
