from __future__ import annotations

from decimal import Decimal

import pytest

from webapp.services.ledger.keys import idempotency_key
from webapp.services.ledger.minor_units import format_amount, to_major, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "EUR", 1234),
        ("69.12", "eur", 6912),
        ("0.1", "usd", 10),
        ("-9.99", "eur", -999),
        ("1234", "JPY", 1234),
        ("1234", "krw", 1234),
        ("100.5", "jpy", 101),  # half up: Mirakl sends no fractions for zero-decimal currencies
        ("8.675", "eur", 868),
    ],
)
def test_to_minor(amount, currency, minor):
    assert to_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [(1234, "eur", "12.34"), (5, "eur", "0.05"), (1234, "jpy", "1234"), (-999, "EUR", "-9.99")],
)
def test_to_major(minor, currency, major):
    assert to_major(minor, currency) == Decimal(major)
    assert str(to_major(minor, currency)) == major


def test_jpy_order_pays_1134_not_113400():
    assert to_minor(Decimal("1234") - Decimal("100"), "jpy") == 1134


def test_format_amount():
    assert format_amount(1234, "eur") == "12.34 EUR"
    assert format_amount(500, "jpy") == "500 JPY"
    assert format_amount(None, "eur") == "—"


def test_bad_amount_raises_value_error():
    with pytest.raises(ValueError, match="not a money amount"):
        to_minor("abc", "eur")  # type: ignore[arg-type]


def test_idempotency_key_changes_only_with_attempt():
    first = idempotency_key("TRANSFER_PRODUCT_ORDER", "O-1-A", 0)
    assert first == idempotency_key("TRANSFER_PRODUCT_ORDER", "O-1-A", 0)
    assert first != idempotency_key("TRANSFER_PRODUCT_ORDER", "O-1-A", 1)
    assert first != idempotency_key("TRANSFER_SERVICE_ORDER", "O-1-A", 0)
    assert len(first) <= 255
