"""Money: amounts are integers in minor units everywhere; Mirakl decimals convert here only."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor units: amounts are stored in BigInteger columns (64-bit since migration 0002); an
# amount beyond is garbage from Mirakl, held with a reason rather than crashing the insert.
MAX_AMOUNT = 2**63 - 1


# Stripe's zero-decimal currencies: the amount is already in the smallest unit.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
        "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    }
)  # fmt: skip


def minor_unit_exponent(currency: str) -> int:
    """Digits after the decimal point in Stripe amounts for ``currency``."""
    return 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2


def to_minor(amount: Decimal, currency: str) -> int:
    """Mirakl decimal amount → Stripe integer amount (EUR 12.34 → 1234, JPY 1234 → 1234)."""
    try:
        scaled = Decimal(amount).scaleb(minor_unit_exponent(currency))
        return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValueError(f"not a money amount: {amount!r}") from exc


def to_major(amount: int, currency: str) -> Decimal:
    """Stripe integer amount → decimal major units (1234 EUR → 12.34, 1234 JPY → 1234)."""
    exponent = minor_unit_exponent(currency)
    return (Decimal(amount).scaleb(-exponent)).quantize(Decimal(1).scaleb(-exponent))


def format_amount(amount: int | None, currency: str | None) -> str:
    """Human form for pages and e-mails: ``12.34 EUR``."""
    if amount is None or not currency:
        return "—"
    return f"{to_major(amount, currency)} {currency.upper()}"
