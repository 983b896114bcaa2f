"""Generic readers of Mirakl JSON fields, shared by every parser in ``mirakl/types.py``.

Each reader takes an object and a key and returns a checked Python value: strings that fit
our columns, ids within ``Integer`` range, amounts as finite ``Decimal`` (never float), dates
as naive UTC ``datetime``. Anything else raises ``MiraklDataError`` naming the field.
``guess_id`` digs a usable id out of an item that failed to parse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from webapp.errors import MiraklDataError

ZERO = Decimal(0)
MAX_TEXT_LENGTH = 255  # characters: ids and names are stored in String(255) columns
MAX_ID = 2**31 - 1  # shop and invoice ids are stored in Integer columns
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _get(data: Mapping[str, Any], key: str) -> Any:
    if not isinstance(data, Mapping):
        raise MiraklDataError(f"expected an object, got {type(data).__name__}")
    return data.get(key)


def _storable(text: str, key: str) -> str:
    """Text that fits our columns: PostgreSQL refuses NUL, ids are at most 255 characters."""
    if "\x00" in text:
        raise MiraklDataError(f"{key} holds a NUL character")
    if len(text) > MAX_TEXT_LENGTH:
        raise MiraklDataError(f"{key} is too long ({len(text)} characters)")
    return text


def req_str(data: Mapping[str, Any], key: str) -> str:
    value = _get(data, key)
    if isinstance(value, bool) or value is None or value == "":
        raise MiraklDataError(f"{key} is missing")
    if isinstance(value, int | str):
        return _storable(str(value), key)
    raise MiraklDataError(f"{key} must be a string, got {type(value).__name__}")


def opt_str(data: Mapping[str, Any], key: str) -> str:
    value = _get(data, key)
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float | str):
        return _storable(str(value), key)
    raise MiraklDataError(f"{key} must be a string, got {type(value).__name__}")


def req_int(data: Mapping[str, Any], key: str) -> int:
    value = _get(data, key)
    if isinstance(value, bool) or value is None or value == "":
        raise MiraklDataError(f"{key} is missing")
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise MiraklDataError(f"{key} is not a number: {value!r:.60}")
    if abs(value) > MAX_ID:
        raise MiraklDataError(f"{key} is out of range: {value!r:.60}")
    return value


def opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = _get(data, key)
    if value is None or value == "":
        return None
    return req_int(data, key)


def to_decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise MiraklDataError(f"{what} is missing")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MiraklDataError(f"{what} is not a finite number: {value!r}")
        value = str(value)
    if isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise MiraklDataError(f"{what} is not a number: {value!r}") from None
        if not result.is_finite():
            raise MiraklDataError(f"{what} is not a finite number: {value!r}")
        if abs(result) > Decimal("1e12"):
            raise MiraklDataError(f"{what} is out of range: {value!r}")
        return result
    raise MiraklDataError(f"{what} is not a number: {value!r}")


def req_decimal(data: Mapping[str, Any], key: str) -> Decimal:
    return to_decimal(_get(data, key), key)


def opt_decimal(data: Mapping[str, Any], key: str) -> Decimal:
    value = _get(data, key)
    return ZERO if value is None or value == "" else to_decimal(value, key)


def parse_date(raw: str, what: str) -> datetime:
    """ISO 8601 as Mirakl writes it (``Z``, ``+0100``, ``+01:00``, milliseconds) → naive UTC."""
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdecimal() and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]  # +0100 → +01:00
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise MiraklDataError(f"{what} is not a date: {raw!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def opt_date(data: Mapping[str, Any], key: str) -> tuple[datetime | None, str]:
    raw = _get(data, key)
    if raw is None or raw == "":
        return None, ""
    if not isinstance(raw, str):
        raise MiraklDataError(f"{key} is not a date: {raw!r}")
    return parse_date(raw, key), raw


def obj_list(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = _get(data, key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise MiraklDataError(f"{key} must be a list of objects")
    return value


def obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(data, key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MiraklDataError(f"{key} must be an object")
    return value


def sum_amounts(items: list[Mapping[str, Any]], what: str) -> Decimal:
    return sum((to_decimal(_get(i, "amount"), f"{what}.amount") for i in items), ZERO)


def currency_code(data: Mapping[str, Any], key: str) -> str:
    value = req_str(data, key).strip()
    if not (len(value) == 3 and value.isascii() and value.isalpha()):
        raise MiraklDataError(f"{key} is not a currency code: {value!r}")
    return value.lower()


def opt_currency_code(data: Mapping[str, Any], key: str) -> str:
    """``currency_code`` for a field that may be absent ("" then)."""
    return currency_code(data, key) if opt_str(data, key).strip() else ""


def guess_id(data: Any, *keys: str) -> str | None:
    """Best-effort id of a malformed item, so its row can still carry a reason."""
    if isinstance(data, Mapping):
        for key in keys:
            value = data.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                text = str(value)
                if text and "\x00" not in text and len(text) <= MAX_TEXT_LENGTH:
                    return text
    return None
