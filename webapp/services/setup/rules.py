"""Pure setup decisions: facts in, one ``CheckResult`` out (no I/O, no clock, no app).

Each message says what was found and, when it is not ok, what to do.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from webapp.services.mirakl.types import AdditionalField
from webapp.services.setup.results import CheckResult, Level, fail, ok, warn
from webapp.services.setup.webhook_endpoints import (
    EndpointSpec,
    matching_endpoints,
    missing_events,
    same_url,
)

REGISTER = "run `flask --app wsgi connector register-webhooks`"


def evaluate_migration(current: Collection[str], heads: Collection[str]) -> CheckResult:
    """The database's Alembic revision against the code's head(s)."""
    name = "database"
    if not current:
        return fail(name, "reachable but not migrated: run `flask --app wsgi db upgrade`")
    if set(current) != set(heads):
        return fail(
            name,
            f"at revision {', '.join(sorted(current))}, the code needs "
            f"{', '.join(sorted(heads))}: run `flask --app wsgi db upgrade`",
        )
    return ok(name, f"reachable, at the latest migration ({', '.join(sorted(heads))})")


def evaluate_processes(
    is_scheduler_alive: bool,
    worker_queues: Collection[str],
    expected_queues: Sequence[str],
) -> list[CheckResult]:
    """The scheduler's heartbeat and a worker on each queue.

    1. Neither scheduler nor worker: fine only when cron runs the CLI commands (warn).
    2. No scheduler while workers run: nothing gets queued any more (FAIL).
    3. A queue nobody listens to: its jobs wait forever (FAIL).
    """
    if not is_scheduler_alive and not worker_queues:
        return [
            warn(
                "scheduler and workers",
                "none running: start the Procfile's scheduler and worker processes, "
                "unless cron runs the `connector` commands",
            )
        ]
    results = [
        ok("scheduler", "heartbeat seen")
        if is_scheduler_alive
        else fail("scheduler", "no heartbeat: start (or restart) the Procfile's scheduler process")
    ]
    missing = [q for q in expected_queues if q not in worker_queues]
    if missing:
        results.append(
            fail(
                "workers",
                f"no worker listening on {', '.join(missing)}: start `flask --app wsgi "
                "connector worker` (it listens on every queue by default)",
            )
        )
    else:
        results.append(ok("workers", f"listening on {', '.join(expected_queues)}"))
    return results


def evaluate_custom_field(
    code: str,
    fields: Mapping[str, AdditionalField],
    expected_type: str,
    *,
    is_needed: bool,
    seller_permissions: Mapping[str, tuple[Level, str]],
) -> CheckResult:
    """One shop custom field the configuration names, against AF01.

    1. Missing: FAIL when the connector needs it, else warn.
    2. Another type: FAIL (Mirakl refuses the values the connector writes).
    3. A seller permission listed in ``seller_permissions``: its level and reason.
    """
    name = f"mirakl field {code}"
    create = f"create the shop custom field `{code}` of type {expected_type} in Mirakl"
    field = fields.get(code)
    if field is None:
        return (fail if is_needed else warn)(name, f"missing: {create}")
    if field.type != expected_type:
        return fail(
            name,
            f"of type {field.type or 'unknown'}, needs {expected_type}: change its type "
            f"(or delete it and {create})",
        )
    verdict = seller_permissions.get(field.shop_permission)
    if verdict is not None:
        level, why = verdict
        return CheckResult(name, level, f"sellers have {field.shop_permission}: {why}")
    permission = f", sellers {field.shop_permission}" if field.shop_permission else ""
    return ok(name, f"{expected_type}{permission}")


def key_mode(key: str) -> str:
    """``live`` or ``test``, from the key's prefix (``sk_live_``, ``rk_test_``...)."""
    return "live" if "_live_" in key[:8] else "test"


def evaluate_key_mode(mode: str, expected: str, app_env: str) -> CheckResult:
    """The Stripe key's mode against ``STRIPE_MODE`` (or, unset, against ``APP_ENV``).

    1. ``STRIPE_MODE`` set and different: FAIL.
    2. Unset: a test key with ``APP_ENV=prod`` or a live key elsewhere is only a warning.
    """
    name = "stripe mode"
    if expected:
        if mode != expected:
            return fail(
                name,
                f"STRIPE_CLIENT_SECRET is a {mode} key but STRIPE_MODE is {expected}: "
                f"use the {expected} secret key from the Stripe dashboard",
            )
        return ok(name, f"{mode}, as STRIPE_MODE expects")
    usual = "live" if app_env == "prod" else "test"
    if mode != usual:
        return warn(
            name,
            f"a {mode} key with APP_ENV={app_env}: set STRIPE_MODE={mode} if that is intended",
        )
    return ok(name, f"{mode} (APP_ENV={app_env}; set STRIPE_MODE to make it a requirement)")


def evaluate_connect(platform: Mapping[str, Any], refusal: str | None) -> CheckResult:
    """Whether the platform can use Connect: listing connected accounts must work."""
    name = "stripe connect"
    if refusal is not None:
        return fail(
            name,
            f"Stripe refuses Connect calls ({refusal}): activate Connect for this account "
            "in the Stripe dashboard (Settings > Connect)",
        )
    if platform.get("charges_enabled") is False:
        return warn(name, "enabled, but the platform cannot take payments yet (charges_enabled)")
    return ok(name, "enabled")


def evaluate_webhook_endpoint(
    spec: EndpointSpec, endpoints: Sequence[Mapping[str, Any]], secret: str
) -> CheckResult:
    """The endpoint of one spec, as Stripe has it, and the secret we verify it with.

    1. None at our URL: FAIL (naming the URLs the path is registered for, if any).
    2. Only with the wrong ``connect``: FAIL.
    3. Disabled: FAIL.
    4. Events missing: FAIL naming them.
    5. Our signing secret setting empty: FAIL; not ``whsec_...``: warn.
    """
    name = f"webhook {spec.name}"
    matches = matching_endpoints(spec, endpoints)
    if not matches:
        at_url = [e for e in endpoints if same_url(str(e.get("url", "")), spec.url)]
        if at_url:
            return fail(
                name,
                f"{at_url[0].get('id')} at {spec.url} does not receive "
                f"{'Connect' if spec.connect else 'platform'} events: {REGISTER}",
            )
        path = spec.url.split("://", 1)[-1].partition("/")[2]
        elsewhere = [str(e.get("url")) for e in endpoints if str(e.get("url", "")).endswith(path)]
        where = f" (only for {', '.join(elsewhere)})" if elsewhere else ""
        return fail(name, f"no endpoint for {spec.url}{where}: {REGISTER}")
    endpoint = matches[0]
    endpoint_id = endpoint.get("id")
    if endpoint.get("status") != "enabled":
        return fail(name, f"{endpoint_id} is disabled: {REGISTER} (or enable it)")
    missing = missing_events(spec, endpoint)
    if missing:
        return fail(name, f"{endpoint_id} does not send {', '.join(missing)}: {REGISTER}")
    if not secret:
        return fail(
            name,
            f"{endpoint_id} is registered but {spec.secret_setting} is empty: set it to the "
            "endpoint's signing secret (Stripe dashboard > Webhooks > Reveal)",
        )
    if not secret.startswith("whsec_"):
        return warn(name, f"{spec.secret_setting} does not look like a signing secret (whsec_...)")
    return ok(name, f"{endpoint_id} at {spec.url}, {len(spec.events)} event types")


def evaluate_inbox_liveness(
    endpoint: str, last_received_at: datetime | None, now: datetime, days: int
) -> CheckResult:
    """A hint that Stripe reaches us: an event received on the endpoint lately."""
    name = f"webhook {endpoint} events"
    if last_received_at is None:
        return warn(name, "none received yet (normal on a new installation)")
    if now - last_received_at > timedelta(days=days):
        return warn(
            name,
            f"none since {last_received_at:%Y-%m-%d %H:%M} UTC: check the endpoint's "
            "recent deliveries in the Stripe dashboard",
        )
    return ok(name, f"last received {last_received_at:%Y-%m-%d %H:%M} UTC")
