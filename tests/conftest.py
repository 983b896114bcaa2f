"""Shared fixtures: real PostgreSQL (or SQLite), real Redis, the sandbox servers over HTTP.

Each pytest session gets its own PostgreSQL database and its own Redis database index, so
several runs on one machine never see each other's data. The schema is built once per
session by the real migrations; each test then starts from empty tables.

Backend: ``TEST_DB=postgresql`` (default) or ``TEST_DB=sqlite``; the PostgreSQL server is
``TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sandbox.mirakl.control import MiraklControl
from sandbox.servers import start_mirakl, start_stripe
from sandbox.stripe.control import StripeControl
from tests.contract.stripe_params import check_requests
from webapp import create_app
from webapp.db_cli import init_migrations
from webapp.extensions import db

PG_SERVER = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
BACKEND = os.environ.get("TEST_DB", "postgresql")
TABLES = (
    "operation_event", "notification", "webhook_event", "job_run", "lease", "stripe_transfer",
    "stripe_refund", "stripe_payout", "payment_mapping", "pending_shop", "account_mapping",
    "config", "console_session", "login_throttle", "operator_user", "audit_event",
    "reconciliation_finding", "setup_check",
)  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Fail at once, in one line, when a service the tests need is not answering."""
    try:
        redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is not answering at {REDIS_SERVER}: {exc}", returncode=3)
    try:
        psycopg.connect(PG_SERVER, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.exit(f"PostgreSQL is not answering at {PG_SERVER}: {exc}", returncode=3)


# ---------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    name = f"connector_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="connector-test-") as folder:
        yield f"sqlite:///{folder}/connector.db"


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    """The database of the session's backend (``TEST_DB``)."""
    if BACKEND == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database index claimed for this session (1 and up), flushed before and after."""
    claims = redis.Redis.from_url(f"{REDIS_SERVER}/0")
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    # A server started with more databases (``--databases N``) lets more runs share it.
    count = int(claims.config_get("databases").get("databases", 16))
    for index in range(1, count):
        if claims.set(f"connector-test-claim:{index}", token, nx=True, ex=3600):
            break
    else:
        pytest.exit(
            f"no free Redis database index for tests (1-{count - 1} all claimed)", returncode=3
        )
    url = f"{REDIS_SERVER}/{index}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()
    if claims.get(f"connector-test-claim:{index}") == token.encode():
        claims.delete(f"connector-test-claim:{index}")


# ---------------------------------------------------------------- sandboxes


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[str]:
    handle = start_stripe()
    yield handle.url
    handle.stop()


@pytest.fixture(scope="session")
def mirakl_server() -> Iterator[str]:
    handle = start_mirakl()
    yield handle.url
    handle.stop()


@pytest.fixture
def stripe(stripe_server: str) -> StripeControl:
    """The Stripe sandbox, emptied for this test."""
    control = StripeControl(stripe_server)
    control.reset()
    control.clear_faults()
    control.clear_requests()
    return control


@pytest.fixture(autouse=True)
def stripe_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every Stripe request a test made the connector send must match stripe-python's
    parameter classes (``tests/contract/stripe_params.py``); checked at teardown."""
    if "stripe" not in request.fixturenames:
        yield
        return
    control: StripeControl = request.getfixturevalue("stripe")
    yield
    violations = check_requests(control.requests())
    if violations:
        pytest.fail(
            f"{len(violations)} request(s) Stripe would refuse:\n" + "\n".join(violations[:20]),
            pytrace=False,
        )


@pytest.fixture
def mirakl(mirakl_server: str) -> MiraklControl:
    """The Mirakl sandbox, emptied for this test."""
    control = MiraklControl(mirakl_server)
    control.reset()
    control.clear_faults()
    control.clear_requests()
    return control


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
                sink.messages.append(message)
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def dsn(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def smtp(smtp_server: SmtpSink) -> SmtpSink:
    """The SMTP sink, emptied for this test; use ``make_app(MAILER_DSN=smtp.dsn, ...)``."""
    smtp_server.messages.clear()
    return smtp_server


# ---------------------------------------------------------------- the app


@pytest.fixture(scope="session")
def base_env(
    database_url: str, redis_url: str, stripe_server: str, mirakl_server: str
) -> dict[str, str]:
    """Environment-style settings every test app starts from."""
    return {
        "APP_ENV": "test",
        "APP_SECRET": "test-app-secret",
        "OPERATOR_PASSWORD": "operator-password",
        "SCHEME": "http",
        "BASE_HOST": "connector.test",
        "STRIPE_CLIENT_SECRET": "sk_test_connector",
        "STRIPE_API_BASE": stripe_server,
        "STRIPE_SELLERS_WEBHOOK_SECRET": "whsec_sellers",
        "STRIPE_OPERATOR_WEBHOOK_SECRET": "whsec_operator",
        "STRIPE_MAX_RPS": "1000",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "MIRAKL_HOST_NAME": mirakl_server,
        "MIRAKL_API_KEY": "mirakl-operator-key",
        "MIRAKL_MAX_RETRIES": "3",
        "MIRAKL_BACKOFF_BASE": "0.01",
        "MIRAKL_TIMEOUT": "10",
        "RETRY_BACKOFF_BASE": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "NOTIFICATION_RETRY_DELAYS": "0,0,0",
    }


@pytest.fixture(scope="session")
def migrated(base_env: dict[str, str]) -> str:
    """Build the schema once per session with the real migrations."""
    app = create_app(base_env)
    with app.app_context():
        init_migrations(app)
        upgrade()
        db.engine.dispose()
    return base_env["DATABASE_URL"]


EMPTYING_WAIT = "15s"  # how long emptying the tables waits for another connection's locks


def _empty_tables() -> None:
    if db.engine.dialect.name == "postgresql":
        truncate = text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        try:
            db.session.execute(text(f"SET LOCAL lock_timeout = '{EMPTYING_WAIT}'"))
            db.session.execute(truncate)
        except OperationalError:
            # A connection of an earlier test still holds a lock (a server thread that
            # outlived its test): say whose, end it, and empty the tables of this one.
            db.session.rollback()
            _end_leftover_connections()
            db.session.execute(truncate)
    else:
        for table in TABLES:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


def _end_leftover_connections() -> None:
    leftovers = db.session.execute(
        text(
            "SELECT pid, state, now() - xact_start, left(query, 200) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state <> 'idle'"
        )
    ).all()
    for pid, state, age, query in leftovers:
        print(f"test database: ending leftover connection {pid} ({state}, {age}): {query}",
              file=sys.__stderr__, flush=True)  # fmt: skip
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    db.session.commit()


@pytest.fixture
def make_app(
    base_env: dict[str, str], migrated: str, redis_url: str
) -> Iterator[Callable[..., Flask]]:
    """Build an app with extra settings, e.g. ``make_app(ENABLE_PRODUCT_PAYMENT_SPLIT="true")``.

    Tables are emptied and Redis flushed once per test, on the first app built.
    """
    built: list[Flask] = []

    def factory(**overrides: str) -> Flask:
        app = create_app({**base_env, **overrides})
        if not built:
            with app.app_context():
                _empty_tables()
            redis.Redis.from_url(redis_url).flushdb()
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    """An app on default settings, with an app context pushed."""
    application = make_app()
    with application.app_context():
        yield application


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()
