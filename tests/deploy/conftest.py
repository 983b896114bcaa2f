"""Fixtures of the deploy check: one installed release per session, a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import PG_SERVER
from tests.deploy.harness import Deploy, Release, free_port, shared_release
from webapp.extensions import db
from webapp.jobs.table import job_modules

SCHEDULED = ("sync-onboarding", "process-transfer")  # every minute; every other job off


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The wheel of this tree installed with the lock into a fresh venv, once per test run."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, shared by its xdist workers
    return shared_release(root / "deploy-release")


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty PostgreSQL database (whatever TEST_DB says: platforms run PostgreSQL)."""
    name = f"connector_deploy_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_SERVER.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def deploy(
    release: Release,
    fresh_database: str,
    redis_url: str,
    base_env: dict[str, str],
    tmp_path: Path,
    stripe,
    mirakl,
) -> Iterator[Deploy]:
    """The release configured as in production, against the sandboxes; killed at the end."""
    redis.Redis.from_url(redis_url).flushdb()
    config = {
        **base_env,
        "APP_ENV": "prod",
        "SCHEME": "https",
        "BASE_HOST": "connector.example.com",
        "TRUSTED_PROXIES": "1",
        "DATABASE_URL": fresh_database,
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "ENABLE_PRODUCT_PAYMENT_SPLIT": "true",
    }
    for module in job_modules():
        every_minute = module.NAME in SCHEDULED
        config["SCHEDULE_" + module.NAME.upper().replace("-", "_")] = (
            "* * * * *" if every_minute else ""
        )
    logs = tmp_path / "logs"
    logs.mkdir()
    handle = Deploy(release, config, logs)
    yield handle
    handle.kill_all()
    if handle.app is not None:
        with handle.app.app_context():
            db.engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()
