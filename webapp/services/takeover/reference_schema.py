"""Reads a PHP connector 4.1.1 database (reference-connector.md §2) in one consistent snapshot.

Only this module talks to the source database, with psycopg, read-only: it never writes
there. Rows come back as plain dicts of the reference's columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from webapp.errors import ConnectorError

# Reference table → the columns we read (its published schema).
COLUMNS: dict[str, tuple[str, ...]] = {
    "account_mapping": (
        "id", "mirakl_shop_id", "stripe_account_id", "onboarding_token", "payout_enabled",
        "payin_enabled", "ignored", "disabled_reason", "creation_datetime",
        "modification_datetime",
    ),
    "config": ("key", "value"),
    "payment_mapping": (
        "mirakl_commercial_order_id", "stripe_charge_id", "status", "stripe_amount",
        "creation_datetime", "modification_datetime",
    ),
    "stripe_transfer": (
        "mirakl_id", "type", "account_mapping_id", "transfer_id", "transaction_id", "amount",
        "status", "status_reason", "currency", "mirakl_created_date", "creation_datetime",
        "modification_datetime",
    ),
    "stripe_refund": (
        "type", "amount", "currency", "mirakl_refund_id", "mirakl_commercial_order_id",
        "mirakl_order_id", "mirakl_order_line_id", "transaction_id", "stripe_refund_id",
        "status", "status_reason", "mirakl_validation_time", "creation_datetime",
        "modification_datetime",
    ),
    "stripe_payout": (
        "account_mapping_id", "amount", "currency", "mirakl_invoice_id", "payout_id", "status",
        "status_reason", "mirakl_created_date", "creation_datetime", "modification_datetime",
    ),
}  # fmt: skip
# Symfony's DATABASE_URL carries Doctrine options libpq does not know.
DOCTRINE_OPTIONS = frozenset({"serverVersion", "charset", "driver", "server_version"})
CONNECT_TIMEOUT = 10  # seconds


class ReferenceUnreadable(ConnectorError):
    """The source database cannot be reached or is not a PHP connector's database."""


@dataclass
class ReferenceSnapshot:
    """Every row of the reference tables we import, read in one transaction."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])


def libpq_url(url: str) -> str:
    """A URL psycopg accepts: SQLAlchemy driver suffix and Doctrine options removed.

    Raises:
        ReferenceUnreadable: not a PostgreSQL URL.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres", "pgsql"):
        raise ReferenceUnreadable(
            f"--from must be the PHP connector's PostgreSQL URL (postgresql://…), not {scheme!r}"
        )
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in DOCTRINE_OPTIONS]
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))


def describe(url: str) -> str:
    """The source for messages: host and database, never the password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def read_reference(url: str) -> ReferenceSnapshot:
    """All rows of the reference's tables, from one read-only REPEATABLE READ snapshot.

    Raises:
        ReferenceUnreadable: unreachable, or a table of the reference is missing.
    """
    target = libpq_url(url)
    try:
        with psycopg.connect(target, connect_timeout=CONNECT_TIMEOUT, row_factory=dict_row) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            missing = _missing_tables(conn)
            if missing:
                raise ReferenceUnreadable(
                    f"{describe(url)} is not a PHP connector 4.1.1 database: no table "
                    f"{', '.join(missing)}"
                )
            snapshot = ReferenceSnapshot()
            for table, columns in COLUMNS.items():
                names = ", ".join(f'"{c}"' for c in columns)
                cursor = conn.execute(f"SELECT {names} FROM {table} ORDER BY 1")  # noqa: S608
                snapshot.tables[table] = list(cursor.fetchall())
            return snapshot
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReferenceUnreadable(f"cannot read {describe(url)}: {reason}") from None


def _missing_tables(conn: psycopg.Connection) -> list[str]:
    present = {
        row["table_name"]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }
    return [table for table in COLUMNS if table not in present]
