"""``connector doctor``'s checks: gather the facts, let ``rules`` judge them.

Each ``check_*`` function returns its result lines; ``run_checks`` runs them all, in the
order of the checklist in docs/setup.md, and turns a check that crashed into a FAIL line
instead of stopping. Mirakl and Stripe are probed with clients of their own that never retry
and time out after ``PROBE_TIMEOUT`` seconds, so that a dead service costs seconds, not the
minutes the jobs' retries would take. Nothing here needs Redis or takes a job's lease.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from redis import Redis, RedisError
from rq import Worker
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from webapp.clock import utcnow
from webapp.config import app_secret_problem
from webapp.db_cli import MIGRATIONS_DIR
from webapp.errors import ConnectorError, MiraklRejected, StripeRefused
from webapp.extensions import db
from webapp.models import WebhookEvent
from webapp.services.mirakl.client import MiraklClient
from webapp.services.mirakl.types import AdditionalField
from webapp.services.notify.mailer import check_transport, describe_transport, send_mail
from webapp.services.queueing.queues import ALL_QUEUES
from webapp.services.setup import rules
from webapp.services.setup.results import CheckResult, Level, fail, ok, record_result, warn
from webapp.services.setup.webhook_endpoints import desired_endpoints
from webapp.services.stripe.gateway import StripeGateway

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0  # seconds per probe request
INBOX_QUIET_DAYS = 7  # days without a webhook before the liveness hint warns
SCHEDULER_KEYS = "rq:scheduler_instance:*"  # rq-scheduler's heartbeat keys (expire in ~20 s)

# What a seller may do with each field, when it is not what the connector wants.
LINK_PERMISSIONS = {
    "INVISIBLE": (Level.FAIL, "they cannot see their onboarding link; make it READ_ONLY"),
    "READ_WRITE": (Level.WARN, "they can overwrite their onboarding link; make it READ_ONLY"),
}
IGNORED_PERMISSIONS = {
    "READ_WRITE": (Level.WARN, "a seller can stop their own transfers; make it INVISIBLE"),
}


def run_checks(*, send_test_mail: bool = False) -> list[CheckResult]:
    """Every check, one or more lines each, in checklist order."""
    checks: list[tuple[str, Callable[[], list[CheckResult]]]] = [
        ("configuration", check_configuration),
        ("database", check_database),
        ("redis", check_processes),
        ("mirakl", check_mirakl),
        ("stripe", check_stripe),
        ("webhook events", check_inbox),
        ("notifications", check_notification_endpoint),
        ("mail", lambda: check_mail(send_test_mail=send_test_mail)),
    ]
    results: list[CheckResult] = []
    for name, check in checks:
        try:
            results.extend(check())
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            db.session.rollback()
            log.exception("setup check %s: crashed", name)
            results.append(fail(name, f"could not be checked: {type(exc).__name__}: {exc}"))
    return results


def check_configuration() -> list[CheckResult]:
    """The app started, so every variable parsed; say which public URL it serves, and
    whether the console's session key is a dedicated secret (docs/security.md)."""
    cfg = current_app.config
    results = [ok("configuration", f"valid; public URL {cfg['PUBLIC_BASE_URL']}")]
    problem = app_secret_problem(cfg)
    if problem is None:
        results.append(ok("session key", "APP_SECRET is a dedicated secret"))
    elif cfg["DEBUG_ENV"]:
        results.append(warn("session key", problem))
    else:
        results.append(fail("session key", f"{problem}; console sessions could be forged"))
    return results


def check_database() -> list[CheckResult]:
    """Reachable, and at the head revision of the migrations shipped with the code."""
    # alembic costs ~90 ms to import; only doctor and `flask db` need it (see db_cli).
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [fail("database", f"not reachable ({reason}): check DATABASE_URL")]
    heads = ScriptDirectory(MIGRATIONS_DIR).get_heads()
    return [rules.evaluate_migration(current, heads)]


def check_processes() -> list[CheckResult]:
    """Redis answers; the scheduler beats; a worker listens on each queue."""
    url = current_app.config["REDIS_URL"]
    redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        redis.ping()
        scheduler_key = next(iter(redis.scan_iter(SCHEDULER_KEYS, count=100)), None)
        worker_queues = {q for w in Worker.all(connection=redis) for q in w.queue_names()}
    except RedisError as exc:
        return [
            warn(
                "redis",
                f"not reachable at {_without_password(url)} ({type(exc).__name__}): the "
                "scheduler and workers cannot run; fine only if cron runs the commands",
            )
        ]
    finally:
        redis.close()
    redis_line = ok("redis", f"reachable at {_without_password(url)}")
    return [
        redis_line,
        *rules.evaluate_processes(scheduler_key is not None, worker_queues, ALL_QUEUES),
    ]


def check_mirakl() -> list[CheckResult]:
    """V01 with the operator key, then AF01's shop custom fields against the configuration."""
    cfg = current_app.config
    client = MiraklClient(
        cfg["MIRAKL_HOST_NAME"],
        cfg["MIRAKL_API_KEY"].reveal(),
        timeout=min(cfg["MIRAKL_TIMEOUT"], PROBE_TIMEOUT),
        max_retries=0,
    )
    host = cfg["MIRAKL_HOST_NAME"]
    try:
        version = client.get_version()
        fields = client.list_additional_fields("SHOP")
    except MiraklRejected as exc:
        if exc.http_status in (401, 403):
            return [
                fail(
                    "mirakl",
                    f"{host} refused MIRAKL_API_KEY (HTTP {exc.http_status}): use an operator "
                    "API key (Mirakl back office: My user settings > API key)",
                )
            ]
        return [fail("mirakl", f"{host} refused the call: {exc}")]
    except ConnectorError as exc:
        return [fail("mirakl", f"not reachable at {host} ({exc}): check MIRAKL_HOST_NAME")]
    by_code = {f.code: f for f in fields if isinstance(f, AdditionalField)}
    return [
        ok("mirakl", f"reachable at {host} (Mirakl {version or 'version unknown'})"),
        rules.evaluate_custom_field(
            cfg["MIRAKL_CUSTOM_FIELD_CODE"],
            by_code,
            "LINK",
            is_needed=cfg["ENABLE_SELLER_ONBOARDING"],
            seller_permissions=LINK_PERMISSIONS,
        ),
        rules.evaluate_custom_field(
            cfg["MIRAKL_IGNORED_SHOP_FIELD_CODE"],
            by_code,
            "BOOLEAN",
            is_needed=False,
            seller_permissions=IGNORED_PERMISSIONS,
        ),
    ]


def check_stripe() -> list[CheckResult]:
    """The key (and its mode), Connect, and both webhook endpoints with their secrets."""
    cfg = current_app.config
    key = cfg["STRIPE_CLIENT_SECRET"].reveal()
    mode = rules.key_mode(key)
    results = [rules.evaluate_key_mode(mode, cfg["STRIPE_MODE"], cfg["APP_ENV"])]
    gateway = StripeGateway(
        key,
        api_base=cfg["STRIPE_API_BASE"],
        timeout=min(cfg["STRIPE_TIMEOUT"], PROBE_TIMEOUT),
        max_network_retries=0,
    )
    try:
        platform = gateway.retrieve_platform_account()
    except ConnectorError as exc:
        hint = "use the secret key" if exc.http_status == 401 else "check STRIPE_API_BASE"
        return [fail("stripe key", f"refused or unreachable ({exc}): {hint}"), *results]
    results.insert(0, ok("stripe key", f"valid for platform {platform.get('id')} ({mode} mode)"))
    try:
        gateway.find_any_connected_account()
        refusal = None
    except StripeRefused as exc:
        refusal = str(exc)
    results.append(rules.evaluate_connect(platform, refusal))
    endpoints = gateway.list_webhook_endpoints()
    for spec in desired_endpoints(cfg["PUBLIC_BASE_URL"]):
        secret = cfg[spec.secret_setting].reveal()
        results.append(rules.evaluate_webhook_endpoint(spec, endpoints, secret))
    return results


def check_inbox(now: datetime | None = None) -> list[CheckResult]:
    """The last event the webhook inbox received on each endpoint (a liveness hint)."""
    now = now or utcnow()
    query = select(WebhookEvent.endpoint, func.max(WebhookEvent.received_at)).group_by(
        WebhookEvent.endpoint
    )
    try:
        last = dict(db.session.execute(query).all())
    except SQLAlchemyError:
        db.session.rollback()  # the database check says why
        return [warn("webhook events", "not checked: the database is not usable")]
    return [
        rules.evaluate_inbox_liveness(spec.name, last.get(spec.name), now, INBOX_QUIET_DAYS)
        for spec in desired_endpoints(current_app.config["PUBLIC_BASE_URL"])
    ]


def check_notification_endpoint() -> list[CheckResult]:
    """``OPERATOR_NOTIFICATION_URL`` accepts a connection (nothing is posted to it)."""
    url = current_app.config["OPERATOR_NOTIFICATION_URL"]
    if not url:
        return [ok("notifications", "OPERATOR_NOTIFICATION_URL not set: none are sent")]
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        return [
            fail(
                "notifications",
                f"{parts.hostname}:{port} refuses connections ({exc.strerror or exc}): "
                "check OPERATOR_NOTIFICATION_URL and the receiving service",
            )
        ]
    return [ok("notifications", f"{parts.hostname}:{port} accepts connections")]


def check_mail(*, send_test_mail: bool = False) -> list[CheckResult]:
    """The SMTP server of ``MAILER_DSN`` answers (and takes our login); optionally send one."""
    cfg = current_app.config
    if not cfg["MAIL_ENABLED"]:
        return [ok("mail", "disabled (MAILER_DSN=smtp://null)")]
    transport = cfg["MAILER"].transports[0]
    server = describe_transport(transport)
    try:
        check_transport(transport)
    except Exception as exc:  # noqa: BLE001 - smtplib and ssl raise many unrelated types
        return [fail("mail", f"SMTP {server} failed ({type(exc).__name__}): check MAILER_DSN")]
    if not cfg["TECHNICAL_ALERT_EMAIL"]:
        return [warn("mail", f"SMTP {server} answers, but TECHNICAL_ALERT_EMAIL is empty")]
    if send_test_mail:
        sent = send_mail(
            "Stripe connector: test e-mail", "connector doctor --send-test-mail sent this."
        )
        if not sent:
            return [fail("mail", f"SMTP {server} answers but the test e-mail was not sent")]
        return [ok("mail", f"test e-mail sent to {cfg['TECHNICAL_ALERT_EMAIL']}")]
    return [ok("mail", f"SMTP {server} answers")]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def run_and_record(trigger: str, *, send_test_mail: bool = False) -> tuple[list[CheckResult], bool]:
    """Run every check and store the result for the console; (results, whether stored).

    The database may be what is broken, so failing to store is reported, never raised.
    """
    results = run_checks(send_test_mail=send_test_mail)
    try:
        record_result(results, trigger)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("setup check: result not stored: %s", type(exc).__name__)
        return results, False
    return results, True
