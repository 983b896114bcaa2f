"""Pure rules of the console: shop state, links, tries, Mirakl labels, roles, charts, rerun."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest

from webapp.services.access.roles import can, check_role
from webapp.services.rerun.rules import checkpoint_value, get_dated_job, parse_start
from webapp.views.console_charts import bar_chart, day_range
from webapp.views.console_rules import (
    job_of,
    link_kind,
    mirakl_label,
    next_run,
    shop_state,
    tries_taken,
)


@pytest.mark.parametrize(
    "ignored, payouts, charges, reason, expected",
    [
        (True, True, True, None, "ignored"),
        (False, True, True, None, "onboarded"),
        (False, False, False, None, "pending"),
        (False, False, False, "requirements.past_due", "pending"),  # onboarding not finished
        (False, False, False, "requirements.pending_verification", "pending"),
        (False, False, False, "under_review", "pending"),
        (False, False, False, "rejected.fraud", "disabled"),
        (False, False, False, "listed", "disabled"),
        (False, False, False, "platform_paused", "disabled"),
        (False, True, False, "other", "disabled"),
    ],
)
def test_shop_state(ignored, payouts, charges, reason, expected):
    state = shop_state(
        ignored=ignored, payout_enabled=payouts, payin_enabled=charges, disabled_reason=reason
    )
    assert state == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        (None, None),
        ("https://c.example/api/public/onboarding/refresh?token=abc", "onboarding"),
        ("https://connect.stripe.com/express/Ab12", "login"),
    ],
)
def test_link_kind(url, expected):
    assert link_kind(url) == expected


@pytest.mark.parametrize(
    "status, attempt, expected",
    [
        ("PAYOUT_PENDING", 0, 0),
        ("PAYOUT_CREATED", 0, 1),
        ("PAYOUT_FAILED", 1, 1),  # refused once, not retried yet
        ("PAYOUT_CREATED", 1, 2),  # refused once, then paid
        ("TRANSFER_FAILED", 3, 3),
        ("TRANSFER_ON_HOLD", None, 0),
    ],
)
def test_tries_taken(status, attempt, expected):
    assert tries_taken(status, attempt) == expected


@pytest.mark.parametrize(
    "operation, row, expected",
    [
        ("transfer", {"type": "TRANSFER_PRODUCT_ORDER", "mirakl_id": "1234-A"}, "order 1234-A"),
        ("transfer", {"type": "TRANSFER_REFUND", "mirakl_id": "77"}, "refund 77"),
        ("transfer", {"type": "TRANSFER_SUBSCRIPTION", "mirakl_id": "93117"}, "invoice 93117"),
        ("refund", {"mirakl_refund_id": "77", "mirakl_order_id": "1234-A"},
         "refund 77 (order 1234-A)"),
        ("payout", {"mirakl_invoice_id": 93117}, "invoice 93117"),
    ],
)  # fmt: skip
def test_mirakl_label(operation, row, expected):
    assert mirakl_label(operation, SimpleNamespace(**row)) == expected


@pytest.mark.parametrize(
    "operation, transfer_type, job",
    [
        ("transfer", "TRANSFER_PRODUCT_ORDER", "process-transfer"),
        ("transfer", "TRANSFER_REFUND", "process-refund"),
        ("transfer", "TRANSFER_EXTRA_INVOICES", "process-payout"),
        ("refund", None, "process-refund"),
        ("payout", None, "process-payout"),
    ],
)
def test_job_of(operation, transfer_type, job):
    assert job_of(operation, transfer_type) == job


def test_next_run_of_the_daily_payout():
    assert next_run("0 1 * * *", datetime(2026, 12, 3, 8, 0)) == datetime(2026, 12, 4, 1, 0)
    assert next_run("*/5 * * * *", datetime(2026, 12, 3, 8, 1)) == datetime(2026, 12, 3, 8, 5)


@pytest.mark.parametrize(
    "role, permission, allowed",
    [
        ("viewer", "act", False), ("operator", "act", True), ("admin", "act", True),
        ("operator", "manage_users", False), ("admin", "manage_users", True),
        ("operator", "set_checkpoints", False), ("admin", "set_checkpoints", True),
        (None, "act", False), ("root", "act", False),
    ],
)  # fmt: skip
def test_roles(role, permission, allowed):
    assert can(role, permission) is allowed


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        check_role("root")


def test_bar_chart_has_one_bar_per_day_with_its_value():
    days = day_range(date(2026, 12, 3), 7)
    assert days[0] == date(2026, 11, 27) and days[-1] == date(2026, 12, 3)
    svg = str(bar_chart("t", days, {date(2026, 12, 3): 8073}, lambda v: f"{v / 100:.2f} EUR"))
    assert svg.count('class="bar"') == 7
    assert "<title>2026-12-03: 80.73 EUR</title>" in svg
    assert "<title>2026-11-27: 0.00 EUR</title>" in svg
    assert "<script" not in svg


@pytest.mark.parametrize(
    "key, expected",
    [
        ("product_payment_split_checkpoint", "2026-11-20T06:30:00+0000"),
        ("service_payment_split_checkpoint", "2026-11-20T06:30:00.000+00:00"),
        ("seller_settlement_checkpoint", "2026-11-20T06:30:00+0000"),
        ("seller_onboarding_checkpoint", "2026-11-20T06:30:00+0000"),
    ],
)
def test_checkpoint_value_in_the_format_of_its_mirakl_call(key, expected):
    assert checkpoint_value(get_dated_job(key), parse_start("2026-11-20", "06:30")) == expected


def test_parse_start_refuses_what_is_not_a_date():
    assert parse_start("2026-11-20") == datetime(2026, 11, 20)
    with pytest.raises(ValueError, match="is not a date"):
        parse_start("20/11/2026")
    with pytest.raises(ValueError, match="unknown checkpoint"):
        get_dated_job("config_secret")
