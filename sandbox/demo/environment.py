"""The connector's environment for the demo, and the state it starts from.

Every setting is explicit, so a ``.env`` in the checkout cannot leak in; Redis and the instance
folder are emptied first, so every run starts from scratch; the console user gets a generated
password.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import redis

from sandbox.demo.errors import DemoError
from sandbox.demo.processes import run_flask
from sandbox.demo.settings import (
    ADMIN_EMAIL,
    DEMO_FILES,
    EVERY_MINUTE,
    JOBS,
    MIRAKL_API_KEY,
    ROOT,
    STRIPE_SECRET_KEY,
    Ports,
)

# What create-admin prints with the generated password: kept out of setup.log ("shown once").
SHOWN_ONCE = re.compile(r"(password \(shown once\): )(\S+)")
DEMO_SETTINGS = {  # the same in every run; ports, paths and secrets are added per run
    "APP_ENV": "dev",
    "SCHEME": "http",
    "STRIPE_CLIENT_SECRET": STRIPE_SECRET_KEY,
    "MIRAKL_API_KEY": MIRAKL_API_KEY,
    "ENABLE_SELLER_ONBOARDING": "true",
    "ENABLE_PRODUCT_PAYMENT_SPLIT": "true",
    "ENABLE_PRODUCT_PAYMENT_REFUND": "true",
    "ENABLE_SERVICE_PAYMENT_SPLIT": "true",
    "ENABLE_SERVICE_PAYMENT_REFUND": "true",
    # Tax split needs a tax account mapped by hand (shop 0); the demo leaves it off.
    "ENABLE_PAYMENT_TAX_SPLIT": "false",
    "KYC_MIRAKL_SHOP_DISABLE_UPDATE": "true",
    "MAILER_DSN": "smtp://null",
    "PENDING_RECHECK_AFTER": "30",  # seconds
    "MIRAKL_MAX_RETRIES": "2",
    "STRIPE_MAX_NETWORK_RETRIES": "1",
    "PYTHONUNBUFFERED": "1",
}


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
    env.update(DEMO_SETTINGS)
    env.update(
        {
            "APP_SECRET": secrets.token_hex(16),
            "OPERATOR_PASSWORD": operator_password,
            "BASE_HOST": f"127.0.0.1:{ports.web}",
            "DATABASE_URL": f"sqlite:///{database_path}",
            "REDIS_URL": redis_url,
            "STRIPE_API_BASE": f"http://127.0.0.1:{ports.stripe}",
            "MIRAKL_HOST_NAME": f"http://127.0.0.1:{ports.mirakl}",
            "OPERATOR_NOTIFICATION_URL": f"http://127.0.0.1:{ports.notifications}/notify",
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


def upgrade_database(env: Mapping[str, str], logs: Path) -> None:
    """Build the SQLite database with the migrations (``flask --app wsgi db upgrade``)."""
    run_flask(["db", "upgrade"], env, logs)


def run_doctor(env: Mapping[str, str], logs: Path) -> list[str]:
    """``connector doctor``: its result goes to the console's setup panel; return its lines."""
    output = run_flask(["connector", "doctor"], env, logs, check=False)
    return [line for line in output.splitlines() if line.startswith(("ok ", "warn ", "FAIL "))]


def create_admin(env: Mapping[str, str], logs: Path) -> str:
    """Create the console user with a generated password; return the password."""
    output = run_flask(
        ["connector", "create-admin", ADMIN_EMAIL, "--generate"], env, logs, secret=SHOWN_ONCE
    )
    match = SHOWN_ONCE.search(output)
    if match is None:
        raise DemoError(f"create-admin did not print a password:\n{output}")
    return match.group(2)
