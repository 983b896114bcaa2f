"""Schema upgrades on a populated database, on SQLite and PostgreSQL: values are kept."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import inspect, text

from tests.conftest import PG_SERVER
from webapp import create_app
from webapp.db_cli import init_migrations
from webapp.extensions import db

BEYOND_32_BITS = 3_000_000_000  # minor units: ₩3bn, ¥3bn; 2**31 - 1 is 2,147,483,647
NOW = "2026-01-02 03:04:05"


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request, tmp_path) -> Iterator[str]:
    """A database with no schema at all, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/upgrade.db"
        return
    name = f"connector_migration_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_SERVER.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _populate_0001() -> None:
    """Rows in every table holding an amount, at the largest value 32 bits allow."""
    rows = [
        "INSERT INTO account_mapping (id, mirakl_shop_id, stripe_account_id, creation_datetime,"
        " modification_datetime) VALUES (1, 11, 'acct_1', :now, :now)",
        "INSERT INTO payment_mapping (id, mirakl_commercial_order_id, stripe_charge_id, status,"
        " stripe_amount, captured_amount, attempt, creation_datetime, modification_datetime)"
        " VALUES (1, 'CO-1', 'ch_1', 'captured', 2147483647, 1234, 0, :now, :now)",
        "INSERT INTO stripe_transfer (id, mirakl_id, type, account_mapping_id, amount, status,"
        " currency, attempt, creation_datetime, modification_datetime) VALUES"
        " (1, 'O-1-A', 'TRANSFER_PRODUCT_ORDER', 1, 2147483647, 'TRANSFER_CREATED', 'eur', 0,"
        " :now, :now)",
        "INSERT INTO stripe_refund (id, type, amount, currency, mirakl_refund_id, status,"
        " attempt, creation_datetime, modification_datetime) VALUES"
        " (1, 'REFUND_PRODUCT_ORDER', 999, 'eur', 'R-1', 'REFUND_CREATED', 0, :now, :now)",
        "INSERT INTO stripe_payout (id, account_mapping_id, amount, currency, mirakl_invoice_id,"
        " status, attempt, creation_datetime, modification_datetime) VALUES"
        " (1, 1, -2147483648, 'jpy', 7, 'PAYOUT_ABORTED', 0, :now, :now)",
    ]
    for sql in rows:
        db.session.execute(text(sql), {"now": NOW})
    db.session.commit()


def _amounts() -> dict[str, tuple]:
    queries = {
        "payment_mapping": "SELECT stripe_amount, captured_amount FROM payment_mapping",
        "stripe_transfer": "SELECT amount, currency FROM stripe_transfer",
        "stripe_refund": "SELECT amount, mirakl_refund_id FROM stripe_refund",
        "stripe_payout": "SELECT amount, mirakl_invoice_id FROM stripe_payout",
    }
    return {name: tuple(db.session.execute(text(sql)).one()) for name, sql in queries.items()}


def test_amounts_become_64_bit_and_keep_their_values(base_env, empty_db):
    app = create_app({**base_env, "DATABASE_URL": empty_db})
    init_migrations(app)
    with app.app_context():
        upgrade(revision="0001")
        _populate_0001()
        before = _amounts()
        db.session.remove()  # its read transaction would block PostgreSQL's ALTER TABLE

        upgrade()  # to head, through 0006_bigint_amounts

        assert (
            _amounts()
            == before
            == {
                "payment_mapping": (2147483647, 1234),
                "stripe_transfer": (2147483647, "eur"),
                "stripe_refund": (999, "R-1"),
                "stripe_payout": (-2147483648, 7),
            }
        )
        columns = {
            (table, c["name"]): c["type"]
            for table in ("payment_mapping", "stripe_transfer", "stripe_refund", "stripe_payout")
            for c in inspect(db.engine).get_columns(table)
        }
        for key in (
            ("payment_mapping", "stripe_amount"),
            ("payment_mapping", "captured_amount"),
            ("stripe_transfer", "amount"),
            ("stripe_refund", "amount"),
            ("stripe_payout", "amount"),
        ):
            assert "BIGINT" in str(columns[key]).upper(), key
        # The foreign keys and the reference's unique constraint survive the SQLite rebuild.
        uniques = {u["name"] for u in inspect(db.engine).get_unique_constraints("stripe_transfer")}
        assert "transfer" in uniques
        assert inspect(db.engine).get_foreign_keys("stripe_payout")[0]["referred_table"] == (
            "account_mapping"
        )

        db.session.execute(text("UPDATE stripe_payout SET amount = :a"), {"a": BEYOND_32_BITS * 3})
        db.session.execute(
            text("UPDATE payment_mapping SET stripe_amount = :a, captured_amount = :a"),
            {"a": BEYOND_32_BITS},
        )
        db.session.commit()
        assert db.session.execute(text("SELECT amount FROM stripe_payout")).scalar() == (
            BEYOND_32_BITS * 3
        )
        assert (
            db.session.execute(
                text("SELECT stripe_amount + captured_amount FROM payment_mapping")
            ).scalar()
            == 2 * BEYOND_32_BITS
        )
        db.session.remove()
        db.engine.dispose()
