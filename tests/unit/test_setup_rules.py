"""Setup rules and the webhook endpoint plan, with bare values (no app, no network)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from webapp.services.mirakl.types import AdditionalField, parse_additional_field
from webapp.services.setup.results import CheckResult, Level, worst_level
from webapp.services.setup.rules import (
    evaluate_custom_field,
    evaluate_inbox_liveness,
    evaluate_key_mode,
    evaluate_migration,
    evaluate_processes,
    evaluate_webhook_endpoint,
    key_mode,
)
from webapp.services.setup.webhook_endpoints import (
    desired_endpoints,
    plan_webhook_endpoints,
    same_url,
)
from webapp.services.webhooks.inbox import HANDLERS

BASE = "https://connector.example.com"
SELLERS, OPERATOR = desired_endpoints(BASE)
NOW = datetime(2026, 12, 3, 9, 0)
LINK_RULES = {"INVISIBLE": (Level.FAIL, "hidden"), "READ_WRITE": (Level.WARN, "editable")}


def endpoint(url: str, events: list[str], *, connect: Any = False, **extra: Any) -> dict:
    data = {"id": "we_1", "url": url, "enabled_events": events, "status": "enabled", **extra}
    if connect is not None:
        data["connect"] = connect
    return data


def test_the_endpoints_cover_every_handled_event_once() -> None:
    assert sorted(SELLERS.events + OPERATOR.events) == sorted(HANDLERS)
    assert SELLERS.url == BASE + "/api/public/webhook/sellers" and SELLERS.connect
    assert OPERATOR.url == BASE + "/api/public/webhook/operator" and not OPERATOR.connect


@pytest.mark.parametrize(
    ("existing", "action", "params", "reason"),
    [
        ([], "create", None, "no endpoint at this URL"),
        (
            [endpoint(SELLERS.url, ["account.updated", "payout.failed"], connect=True)],
            "none",
            {},
            "up to date",
        ),
        (
            [endpoint(SELLERS.url + "/", ["*"], connect=True)],
            "none",
            {},
            "up to date",
        ),
        (
            [endpoint(SELLERS.url, ["account.updated", "payout.failed"], connect=None)],
            "none",
            {},
            "up to date",
        ),
        (
            [endpoint(SELLERS.url, ["account.updated", "x.y"], connect=True)],
            "update",
            {"enabled_events": ["account.updated", "x.y", "payout.failed"]},
            "missing payout.failed",
        ),
        (
            [
                endpoint(
                    SELLERS.url,
                    ["account.updated", "payout.failed"],
                    connect=True,
                    status="disabled",
                )
            ],
            "update",
            {"disabled": False},
            "disabled",
        ),
        (
            [endpoint(SELLERS.url, ["*"], connect=False)],
            "create",
            None,
            "we_1 at this URL does not receive Connect events",
        ),
        (
            [
                endpoint(
                    "https://staging.example.com/api/public/webhook/sellers", ["*"], connect=True
                )
            ],
            "create",
            None,
            "no endpoint at this URL",
        ),
    ],
)
def test_plan_for_the_sellers_endpoint(
    existing: list[dict], action: str, params: dict | None, reason: str
) -> None:
    [change] = plan_webhook_endpoints([SELLERS], existing)
    assert (change.action, change.reason) == (action, reason)
    if params is not None:
        assert dict(change.params) == params
    else:
        assert dict(change.params) == {
            "url": SELLERS.url,
            "enabled_events": ["account.updated", "payout.failed"],
            "connect": True,
            "description": "Stripe Connector for Mirakl (sellers events)",
        }


def test_plan_prefers_an_enabled_duplicate() -> None:
    events = ["charge.succeeded", "charge.updated"]
    existing = [
        endpoint(OPERATOR.url, events, id="we_off", status="disabled"),
        endpoint(OPERATOR.url, events, id="we_on"),
    ]
    [change] = plan_webhook_endpoints([OPERATOR], existing)
    assert (change.action, change.endpoint_id) == ("none", "we_on")


def test_same_url_ignores_trailing_slash_and_host_case() -> None:
    assert same_url("https://Connector.Example.com/a/", "https://connector.example.com/a")
    assert not same_url("https://connector.example.com/A", "https://connector.example.com/a")


def test_webhook_endpoint_evaluation() -> None:
    good = endpoint(SELLERS.url, ["account.updated", "payout.failed"], connect=True)
    assert evaluate_webhook_endpoint(SELLERS, [good], "whsec_x").level is Level.OK
    assert evaluate_webhook_endpoint(SELLERS, [good], "").level is Level.FAIL
    assert evaluate_webhook_endpoint(SELLERS, [good], "secret").level is Level.WARN
    elsewhere = endpoint("https://old.example.com/api/public/webhook/sellers", ["*"], connect=True)
    result = evaluate_webhook_endpoint(SELLERS, [elsewhere], "whsec_x")
    assert result.level is Level.FAIL
    assert "(only for https://old.example.com/api/public/webhook/sellers)" in result.message


@pytest.mark.parametrize(
    ("field", "needed", "level", "needle"),
    [
        (None, True, Level.FAIL, "missing"),
        (None, False, Level.WARN, "missing"),
        (
            AdditionalField("stripe-url", "LINK", "SHOP", shop_permission="READ_ONLY"),
            True,
            Level.OK,
            "LINK",
        ),
        (AdditionalField("stripe-url", "LINK", "SHOP"), True, Level.OK, "LINK"),
        (AdditionalField("stripe-url", "STRING", "SHOP"), True, Level.FAIL, "needs LINK"),
        (
            AdditionalField("stripe-url", "LINK", "SHOP", shop_permission="INVISIBLE"),
            True,
            Level.FAIL,
            "hidden",
        ),
        (
            AdditionalField("stripe-url", "LINK", "SHOP", shop_permission="READ_WRITE"),
            True,
            Level.WARN,
            "editable",
        ),
    ],
)
def test_custom_field(
    field: AdditionalField | None, needed: bool, level: Level, needle: str
) -> None:
    fields = {field.code: field} if field else {}
    result = evaluate_custom_field(
        "stripe-url", fields, "LINK", is_needed=needed, seller_permissions=LINK_RULES
    )
    assert result.level is level
    assert needle in result.message


def test_af01_item_parsing() -> None:
    field = parse_additional_field(
        {
            "code": "stripe-url",
            "type": "link",
            "entity": "SHOP",
            "shop_permission": "READ_ONLY",
            "required": False,
        }
    )
    assert field == AdditionalField("stripe-url", "LINK", "SHOP", "", False, "READ_ONLY")


@pytest.mark.parametrize(
    ("key", "expected", "app_env", "level"),
    [
        ("sk_test_1", "", "test", Level.OK),
        ("sk_test_1", "", "prod", Level.WARN),
        ("sk_live_1", "", "prod", Level.OK),
        ("sk_live_1", "", "dev", Level.WARN),
        ("sk_test_1", "test", "prod", Level.OK),
        ("sk_test_1", "live", "test", Level.FAIL),
        ("rk_live_1", "test", "prod", Level.FAIL),
    ],
)
def test_key_mode(key: str, expected: str, app_env: str, level: Level) -> None:
    assert evaluate_key_mode(key_mode(key), expected, app_env).level is level


@pytest.mark.parametrize(
    ("current", "heads", "level"),
    [
        ((), ("0002",), Level.FAIL),
        (("0001",), ("0002",), Level.FAIL),
        (("0002",), ("0002",), Level.OK),
    ],
)
def test_migration(current: tuple, heads: tuple, level: Level) -> None:
    assert evaluate_migration(current, heads).level is level


@pytest.mark.parametrize(
    ("scheduler", "queues", "levels"),
    [
        (False, set(), [Level.WARN]),
        (True, {"jobs", "money", "notifications"}, [Level.OK, Level.OK]),
        (True, {"jobs"}, [Level.OK, Level.FAIL]),
        (False, {"jobs", "money", "notifications"}, [Level.FAIL, Level.OK]),
    ],
)
def test_processes(scheduler: bool, queues: set, levels: list[Level]) -> None:
    results = evaluate_processes(scheduler, queues, ("jobs", "money", "notifications"))
    assert [r.level for r in results] == levels


@pytest.mark.parametrize(
    ("last", "level"),
    [
        (None, Level.WARN),
        (NOW - timedelta(days=8), Level.WARN),
        (NOW - timedelta(days=6), Level.OK),
    ],
)
def test_inbox_liveness(last: datetime | None, level: Level) -> None:
    assert evaluate_inbox_liveness("sellers", last, NOW, 7).level is level


def test_worst_level_and_line() -> None:
    results = [CheckResult("a", Level.OK, "x"), CheckResult("b", Level.WARN, "y")]
    assert worst_level(results) is Level.WARN
    assert worst_level([]) is Level.OK
    assert CheckResult("mirakl", Level.FAIL, "down").line() == "FAIL  mirakl: down"
    assert CheckResult("mirakl", Level.OK, "up").line() == "ok    mirakl: up"
