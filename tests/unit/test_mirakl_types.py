"""Parsing Mirakl items at the edge: decimals, dates, and clear errors for bad data."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from webapp.errors import MiraklDataError
from webapp.services.mirakl.fields import parse_date
from webapp.services.mirakl.types import (
    parse_invoice,
    parse_pending_refund_order,
    parse_product_order,
    parse_service_order,
    parse_shop,
    service_commercial_id,
)

ORDER = {
    "order_id": "O-1-A", "commercial_id": "O-1", "order_state": "SHIPPING", "shop_id": 1,
    "created_date": "2024-01-02T10:00:00Z", "customer_debited_date": "2024-01-02T11:00:00Z",
    "currency_iso_code": "EUR", "order_tax_mode": "TAX_EXCLUDED", "total_price": 69.12,
    "total_commission": 3.99, "customer": {"customer_id": "c1"}, "unknown_field": [1, 2],
    "order_lines": [{"order_line_id": "O-1-A-1", "order_line_state": "SHIPPING",
                     "total_price": 12.34, "taxes": [{"amount": 1.56, "code": "ECO"}],
                     "shipping_taxes": [{"amount": 1.12, "code": "EXP"}],
                     "refunds": [{"id": "R1", "amount": 12.34, "commission_total_amount": 1.23}]}],
}  # fmt: skip


def test_product_order_amounts_are_exact_decimals():
    order = parse_product_order(ORDER)
    assert order.total_price == Decimal("69.12")
    assert order.currency == "eur"
    assert order.created_date == datetime(2024, 1, 2, 10, 0)
    assert order.created_raw == "2024-01-02T10:00:00Z"
    assert order.lines[0].product_taxes == Decimal("1.56")
    assert order.lines[0].refunds[0].commission_total_amount == Decimal("1.23")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("total_price", "abc", "total_price is not a number"),
        ("total_price", None, "total_price is missing"),
        ("total_price", float("nan"), "not a finite number"),
        ("total_price", True, "total_price is missing"),
        ("total_price", 1e20, "out of range"),
        ("shop_id", "shop-one", "shop_id is not a number"),
        ("currency_iso_code", "EURO", "not a currency code"),
        ("order_lines", {"x": 1}, "order_lines must be a list"),
        ("created_date", "yesterday", "created_date is not a date"),
        ("order_id", None, "order_id is missing"),
    ],
)
def test_bad_order_fields_raise_a_clear_error(field, value, message):
    with pytest.raises(MiraklDataError, match=message):
        parse_product_order({**ORDER, field: value})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-01-02T00:00:00+0100", datetime(2019, 1, 1, 23, 0)),
        ("2019-01-02T00:00:00.000+01:00", datetime(2019, 1, 1, 23, 0)),
        ("2019-01-02T00:00:00Z", datetime(2019, 1, 2, 0, 0)),
        ("2019-01-02T00:00:00.123Z", datetime(2019, 1, 2, 0, 0, 0, 123000)),
    ],
)
def test_dates_in_every_mirakl_form(raw, expected):
    assert parse_date(raw, "d") == expected


def test_service_order_options_and_taxes():
    order = parse_service_order({
        "id": "S-1-A", "commercial_order_id": "S-1", "state": "ORDER_ACCEPTED",
        "currency_code": "EUR", "shop": {"id": 1}, "date_created": "2024-01-02T10:00:00.000Z",
        "commission": {"amount_including_taxes": 3.99},
        "price": {"amount": 12.34, "options": [{"type": "BOOLEAN", "amount": 1.12},
                  {"type": "VALUE_LIST", "values": [{"amount": 1.34}]}],
                  "taxes": [{"amount": 1.56}, {"amount": 1.78}]},
    })  # fmt: skip
    assert (order.price, order.options, order.taxes, order.commission) == (
        Decimal("12.34"),
        Decimal("2.46"),
        Decimal("3.34"),
        Decimal("3.99"),
    )


def test_pa12_order_is_flattened_per_refund_line():
    refunds = parse_pending_refund_order({
        "order_id": "O-1-A", "order_commercial_id": "O-1", "currency_iso_code": "EUR",
        "order_lines": {"order_line": [
            {"order_line_id": "L1", "refunds": {"refund": [{"id": "R1", "amount": 1.5},
                                                          {"id": "R2", "amount": 2}]}},
            {"order_line_id": "L2", "refunds": {"refund": {"id": "R3", "amount": 3}}},
        ]},
    })  # fmt: skip
    assert [(r.id, r.order_line_id, r.amount) for r in refunds] == [
        ("R1", "L1", Decimal("1.5")),
        ("R2", "L1", Decimal(2)),
        ("R3", "L2", Decimal(3)),
    ]


def test_shop_custom_fields_and_invoice():
    shop = parse_shop(
        {
            "shop_id": 7,
            "shop_name": "Seven",
            "last_updated_date": "2024-01-01T00:00:00Z",
            "shop_additional_fields": [
                {"code": "stripe-ignored", "value": True},
                {"code": "stripe-url", "value": None},
            ],
        }
    )
    assert shop.additional_fields == {"stripe-ignored": "true", "stripe-url": ""}
    invoice = parse_invoice(
        {
            "invoice_id": "12",
            "shop_id": 7,
            "currency_iso_code": "EUR",
            "date_created": "2024-01-01T00:00:00Z",
            "summary": {"amount_transferred": 12.34, "total_subscription_incl_tax": -9.99},
        }
    )
    assert (invoice.id, invoice.amount_transferred, invoice.total_subscription_incl_tax) == (
        12,
        Decimal("12.34"),
        Decimal("-9.99"),
    )
    assert invoice.total_other_credits_incl_tax == 0


def test_service_commercial_id_drops_the_last_segment():
    assert service_commercial_id("ABC-123-A") == "ABC-123"
    assert service_commercial_id("ABC") == "ABC"


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("EUR", "eur"), (None, ""), ("", ""), (0, MiraklDataError), ("E1R", MiraklDataError)],
)
def test_shop_currency_is_a_currency_code_or_absent(currency, expected):
    """Found by fuzzing: ``currency_iso_code: 0`` became the currency "0"."""
    data = {"shop_id": 1, "shop_name": "Shop 1", "currency_iso_code": currency}
    if expected is MiraklDataError:
        with pytest.raises(MiraklDataError, match="not a currency code"):
            parse_shop(data)
    else:
        assert parse_shop(data).currency == expected
