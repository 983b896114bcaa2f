"""CSV exports of console lists: the list's filters and search applied, streamed row by row.

A 100,000-row export never holds the table: rows are read ``EXPORT_BATCH`` at a time
(``yield_per``) and each CSV line leaves as soon as it is written. Mirakl ids come first;
amounts are in major units (``80.73``) beside their currency, as a spreadsheet wants.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from flask import Response, stream_with_context

from webapp.services.ledger.minor_units import to_major

EXPORT_BATCH = 1000  # rows fetched from the database at a time


def major(attr: str) -> Callable[[Any], str]:
    """A column getter: the amount in major units ("80.73"; "8073" for JPY), or ""."""

    def get(row: Any) -> str:
        amount, currency = getattr(row, attr), getattr(row, "currency", None)
        if amount is None or not currency:
            return "" if amount is None else str(amount)
        return str(to_major(amount, currency))

    return get


def plain(attr: str) -> Callable[[Any], Any]:
    """A column getter: the attribute as it is (dates in ISO 8601)."""

    def get(row: Any) -> Any:
        value = getattr(row, attr, None)
        if isinstance(value, datetime):
            return value.isoformat(sep=" ", timespec="seconds")
        return "" if value is None else value

    return get


def upper(attr: str) -> Callable[[Any], str]:
    return lambda row: (getattr(row, attr, None) or "").upper()


def _safe(value: Any) -> Any:
    """A spreadsheet runs a cell starting with = + - @ as a formula: quote it."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_lines(columns: list[tuple[str, Callable[[Any], Any]]], rows: Any) -> Iterator[str]:
    """The header, then one CSV line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([name for name, _ in columns])
    yield flush()
    for row in rows:
        writer.writerow([_safe(get(row)) for _, get in columns])
        yield flush()


def csv_response(
    filename: str, columns: list[tuple[str, Callable[[Any], Any]]], query: Any
) -> Response:
    """Stream ``query`` (a SQLAlchemy ``Query``) as a CSV download."""
    rows = query.yield_per(EXPORT_BATCH)
    return Response(
        stream_with_context(csv_lines(columns, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
