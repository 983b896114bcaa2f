"""Fuzzing Mirakl payloads: the parsers, then the real jobs through the Mirakl sandbox.

Parsers (``webapp/services/mirakl_types.py``) get arbitrary JSON-like values and valid items
with fields deleted, replaced by garbage or wrapped in lists: they either return values that
the rest of the connector can store and compute with, or raise ``MiraklDataError`` (which
the client turns into a ``BadItem``): never any other exception, which would end a run.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.mirakl.demo import (
    make_cancelation,
    make_invoice,
    make_order_line,
    make_product_order,
    make_refund_line,
    make_service_debit,
    make_service_order,
    make_service_refund,
    make_shop,
)
from tests.fuzz import json_values, mutated
from webapp.errors import MiraklDataError
from webapp.services import mirakl_types as mt
from webapp.services.money import to_minor

# Hypothesis' failure report touches mypy_extensions, deprecated: not our warning to fix.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict:DeprecationWarning")

MAX_ID_LENGTH = 255  # String(255) columns hold Mirakl ids
MAX_INT_ID = 2**31 - 1  # Integer columns hold shop and invoice ids
MAX_MAJOR_AMOUNT = Decimal("1e12")

PA11_ITEM = {
    "order_id": "O-1-A", "order_commercial_id": "O-1", "customer_id": "c1", "shop_id": 1,
    "amount": 84.72, "currency_iso_code": "EUR",
}  # fmt: skip
PA12_ITEM = {
    "order_id": "O-1-A", "order_commercial_id": "O-1", "currency_iso_code": "EUR", "shop_id": 1,
    "order_lines": {"order_line": [
        {"order_line_id": "O-1-A-1", "refunds": {"refund": [{"id": "R1", "amount": 12.34}]}},
        {"order_line_id": "O-1-A-2", "refunds": {"refund": {"id": "R2", "amount": 5}}},
    ]},
}  # fmt: skip
SPA12_ITEM = {"id": "6001", "order_id": "S-1-A", "amount": 12.34, "currency_code": "EUR"}

PRODUCT_ORDER = make_product_order(
    "O-1-A",
    transaction_number="ch_1",
    refunds=[make_refund_line("R1", taxes=[("1.1", "T")])],
    lines=[
        make_order_line(
            "O-1-A-1", "12.34", taxes=[("1.56", "T")], cancelations=[make_cancelation("1")]
        ),
        make_order_line("O-1-A-2", "56.78", shipping_taxes=[("2.12", "S")]),
    ],
)

# parser, a valid item, and what a successful parse must return
PARSERS: dict[str, tuple[Any, Any]] = {
    "S20 shop": (mt.parse_shop, make_shop(1, shop_additional_fields=[{"code": "c", "value": 1}])),
    "S07 return": (
        lambda d: mt.parse_shop_return(d, 1),
        {"shop_error": {"shop_id": 1, "errors": [{"code": "E", "message": "m"}]}},
    ),
    "OR11 order": (mt.parse_product_order, PRODUCT_ORDER),
    "OR11 line": (mt.parse_order_line, PRODUCT_ORDER["order_lines"][0]),
    "SOR11 order": (
        mt.parse_service_order,
        make_service_order("S-1-A", refunds=[make_service_refund("6001")]),
    ),
    "PA11 debit": (mt.parse_pending_debit, PA11_ITEM),
    "SPA11 debit": (mt.parse_service_debit, make_service_debit("S-1-A", transaction_number="ch")),
    "PA12 refunds": (mt.parse_pending_refund_order, PA12_ITEM),
    "SPA12 refund": (mt.parse_service_pending_refund, SPA12_ITEM),
    "IV01 invoice": (mt.parse_invoice, make_invoice(1)),
}


def check_usable(value: Any, where: str = "item", currency: str = "") -> None:
    """What a successful parse returns can be stored and computed with."""
    if dataclasses.is_dataclass(value):
        currency = getattr(value, "currency", currency) or currency
        for f in dataclasses.fields(value):
            check_usable(getattr(value, f.name), f"{where}.{f.name}", currency)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_usable(item, f"{where}[{index}]", currency)
    elif isinstance(value, Decimal):
        assert value.is_finite() and abs(value) <= MAX_MAJOR_AMOUNT, where
        to_minor(value, currency or "eur")  # never raises
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        assert abs(value) <= MAX_INT_ID, f"{where} = {value} does not fit an Integer column"
    elif isinstance(value, str):
        assert "\x00" not in value, f"{where} holds a NUL character"
        if where.endswith((".id", "_id")):
            assert len(value) <= MAX_ID_LENGTH, f"{where} has {len(value)} characters"
        if where.endswith(".currency") and value:
            assert value.isascii() and value.isalpha() and value.islower(), where
            assert len(value) == 3, f"{where} = {value!r}"
    elif isinstance(value, datetime):
        assert value.tzinfo is None, where


def parse_or_reject(name: str, data: Any) -> None:
    parse, _ = PARSERS[name]
    try:
        result = parse(data)
    except MiraklDataError as exc:
        assert str(exc), "a MiraklDataError must say what is wrong"
        return
    check_usable(result, name)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", list(PARSERS))
def test_valid_items_parse(name):
    parse, valid = PARSERS[name]
    check_usable(parse(valid), name)


@pytest.mark.parametrize("name", list(PARSERS))
@FUZZ
@given(data=json_values)
def test_arbitrary_json_is_parsed_or_rejected_cleanly(name, data):
    parse_or_reject(name, data)


@pytest.mark.parametrize("name", list(PARSERS))
@FUZZ
@given(data=st.data())
def test_mutated_items_are_parsed_or_rejected_cleanly(name, data):
    parse_or_reject(name, data.draw(mutated(PARSERS[name][1])))


@FUZZ
@given(data=json_values, keys=st.lists(st.text(max_size=12), max_size=3))
def test_guess_id_never_raises_and_fits_a_column(data, keys):
    found = mt.guess_id(data, *keys, "order_id")
    assert found is None or (0 < len(found) <= MAX_ID_LENGTH and "\x00" not in found)


@FUZZ
@given(raw=st.text(max_size=40))
def test_dates_are_parsed_or_rejected_cleanly(raw):
    try:
        value = mt.parse_date(raw, "created_date")
    except MiraklDataError:
        return
    assert value.tzinfo is None


# ---------------------------------------------------------------- regressions (parsers)
# Minimal cases Hypothesis found; each raised something else than MiraklDataError, or
# returned a value that could not be stored.

REGRESSIONS = [
    ("OR11 order", "shop_id", "--5", "shop_id is not a number"),
    ("OR11 order", "shop_id", "²", "shop_id is not a number"),
    ("IV01 invoice", "invoice_id", "١٢", None),
    ("OR11 order", "shop_id", 2**31, "shop_id is out of range"),
    ("IV01 invoice", "invoice_id", -(2**40), "invoice_id is out of range"),
    ("OR11 order", "order_id", "x" * 300, "order_id is too long"),
    ("OR11 order", "order_id", "O-\x00", "order_id holds a NUL character"),
    ("OR11 order", "currency_iso_code", "İAB", "not a currency code"),
    ("OR11 order", "currency_iso_code", "ÉUR", "not a currency code"),
    ("PA11 debit", "order_commercial_id", "y" * 256, "order_commercial_id is too long"),
]


@pytest.mark.parametrize(("name", "field", "value", "message"), REGRESSIONS)
def test_regression_bad_fields_raise_a_clear_error(name, field, value, message):
    parse, valid = PARSERS[name]
    if message is None:
        check_usable(parse({**valid, field: value}), name)
        return
    with pytest.raises(MiraklDataError, match=message):
        parse({**valid, field: value})
