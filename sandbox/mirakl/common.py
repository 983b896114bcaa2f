"""Helpers shared by the Mirakl sandbox blueprints: errors, dates, amounts, JSON.

Stored items are raw JSON written by tests through the control API, so every helper here is
lenient: a malformed value yields ``None`` (or an empty container), never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import current_app, jsonify, request

from .state import Store, id_key

if TYPE_CHECKING:
    from flask import Response

    from .faults import FaultInjector

EXTENSION_KEY = "mirakl_sandbox"
MAX_IDS = 100


class ApiError(Exception):
    """An error answered as Mirakl does: JSON ``{"message": ..., "status": N}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> Response:
    """Build the Mirakl-style JSON error response."""
    response = jsonify({"message": message, "status": status})
    response.status_code = status
    return response


def json_response(payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Serialise ``payload`` as a 200 JSON response with optional extra headers."""
    response = jsonify(payload)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def current_store() -> Store:
    """The :class:`Store` of the running sandbox app."""
    return current_app.extensions[EXTENSION_KEY]["store"]


def current_faults() -> FaultInjector:
    """The :class:`FaultInjector` of the running sandbox app."""
    return current_app.extensions[EXTENSION_KEY]["faults"]


# --- dates -----------------------------------------------------------------------------------


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def now_iso() -> str:
    """Current time in Mirakl's product-API format, e.g. ``2024-01-02T10:00:00Z``."""
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso_ms() -> str:
    """Current time in MMS format with milliseconds, e.g. ``2024-01-02T10:00:00.000Z``."""
    current = now()
    return current.strftime("%Y-%m-%dT%H:%M:%S.") + f"{current.microsecond // 1000:03d}Z"


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ISO-8601 date or date-time leniently; naive values are taken as UTC.

    Accepts ``Z``, ``+01:00`` and ``+0100`` offsets, fractional seconds and plain dates. A ``+``
    decoded as a space by a client that forgot to URL-encode it is repaired. Returns ``None``
    when ``value`` is not a parsable string.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if " " in text and "T" in text:
        head, _, tail = text.rpartition(" ")
        if tail[:2].isdigit():
            text = f"{head}+{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_filter_datetime(name: str, raw: str | None) -> datetime | None:
    """Parse a date-time query parameter; an unparsable value is a 400."""
    if raw is None or raw == "":
        return None
    parsed = parse_datetime(raw)
    if parsed is None:
        raise ApiError(400, f"Invalid date format for the parameter : {name}")
    return parsed


def date_sort_key(value: Any) -> tuple[datetime, str]:
    """Sort key for a stored date value; unparsable values sort first, by their text."""
    parsed = parse_datetime(value)
    return (parsed or datetime.min.replace(tzinfo=UTC), str(value))


def date_at_or_after(value: Any, bound: datetime | None) -> bool:
    """True when no bound is set, or the stored date parses and is ``>= bound``."""
    if bound is None:
        return True
    parsed = parse_datetime(value)
    return parsed is not None and parsed >= bound


def date_before(value: Any, bound: datetime | None) -> bool:
    """True when no bound is set, or the stored date parses and is ``< bound``."""
    if bound is None:
        return True
    parsed = parse_datetime(value)
    return parsed is not None and parsed < bound


# --- amounts, ids, containers ----------------------------------------------------------------


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as a Decimal; ``None`` when not numeric."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def decimal_to_json(value: Decimal) -> float | int:
    """A Decimal as a JSON number (float with the shortest exact-looking representation)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty list."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty dict."""
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    """The dict elements of ``value`` when it is a list (other elements are skipped)."""
    return [item for item in as_list(value) if isinstance(item, dict)]


# --- request parsing -------------------------------------------------------------------------


def split_csv(values: list[str]) -> list[str]:
    """Flatten query values that may be comma-separated lists; blanks are dropped."""
    result: list[str] = []
    for value in values:
        result.extend(part.strip() for part in value.split(",") if part.strip())
    return result


def check_id_limit(name: str, values: list[str]) -> None:
    """Mirakl rejects id filters with more than 100 values."""
    if len(values) > MAX_IDS:
        raise ApiError(400, f"The limit of {MAX_IDS} is exceeded for the parameter : {name}")


def json_body() -> Any:
    """The parsed JSON request body; a missing or invalid body is a 400."""
    if not request.get_data(cache=True):
        raise ApiError(400, "A JSON request body is required")
    try:
        return json.loads(request.get_data(cache=True))
    except ValueError as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}") from exc


def try_json_body() -> Any:
    """The parsed JSON request body, or ``None`` when absent or not JSON (for the request log)."""
    data = request.get_data(cache=True)
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def waiting_refund(
    entry: Any,
    id_field: str,
    index: dict[str | None, tuple[dict[str, Any], dict[str, Any]]],
    seen: set[str],
    waiting_states: Collection[str],
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The checks PA02 and SPA02 share for one entry: an object with an id, listed once, of
    a known refund that is still waiting for payment. Returns (refund id, order, refund)."""
    if not isinstance(entry, dict):
        raise ApiError(400, "Each refund must be a JSON object")
    refund_id = id_key(entry.get(id_field))
    if refund_id is None:
        raise ApiError(400, f"{id_field} is required")
    if refund_id in seen:
        raise ApiError(400, f"Refund {refund_id} is listed more than once")
    seen.add(refund_id)
    if refund_id not in index:
        raise ApiError(400, f"Refund {refund_id} is not waiting for payment: not found")
    order, refund = index[refund_id]
    if refund.get("state") not in waiting_states:
        raise ApiError(400, f"Refund {refund_id} is not waiting for payment")
    return refund_id, order, refund
