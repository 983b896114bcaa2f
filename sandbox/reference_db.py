"""A PHP connector 4.1.1 database, built from its published schema (reference-connector.md §2).

Tests (and an operator rehearsing a switch-over) use it as the source of
``connector import-reference``: ``create_reference_db`` makes an empty PostgreSQL database with
the reference's tables (as Doctrine creates them: ``<table>_id_seq`` sequences, timestamps
defaulting to CURRENT_TIMESTAMP, the ``transfer`` unique constraint), ``insert`` adds rows,
and ``seed_example`` fills it with shops, payment mappings, transfers in every status,
refunds, payouts and checkpoints.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

SCHEMA = (
    """CREATE TABLE account_mapping (
        id SERIAL PRIMARY KEY,
        mirakl_shop_id INT NOT NULL,
        stripe_account_id VARCHAR(255) NOT NULL,
        onboarding_token VARCHAR(255) DEFAULT NULL,
        payout_enabled BOOLEAN DEFAULT false NOT NULL,
        payin_enabled BOOLEAN DEFAULT false NOT NULL,
        disabled_reason VARCHAR(255) DEFAULT NULL,
        ignored BOOLEAN DEFAULT false NOT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL)""",
    "CREATE UNIQUE INDEX uniq_mirakl_shop_id ON account_mapping (mirakl_shop_id)",
    "CREATE UNIQUE INDEX uniq_stripe_account_id ON account_mapping (stripe_account_id)",
    """CREATE TABLE config (
        id SERIAL PRIMARY KEY,
        "key" VARCHAR(255) NOT NULL,
        value VARCHAR(255) DEFAULT NULL)""",
    'CREATE UNIQUE INDEX uniq_config_key ON config ("key")',
    """CREATE TABLE payment_mapping (
        id SERIAL PRIMARY KEY,
        mirakl_commercial_order_id VARCHAR(255) DEFAULT NULL,
        stripe_charge_id VARCHAR(255) NOT NULL,
        status VARCHAR(255) DEFAULT 'to_capture' NOT NULL,
        stripe_amount INT DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL)""",
    "CREATE UNIQUE INDEX uniq_stripe_charge_id ON payment_mapping (stripe_charge_id)",
    """CREATE TABLE stripe_transfer (
        id SERIAL PRIMARY KEY,
        account_mapping_id INT DEFAULT NULL REFERENCES account_mapping (id),
        mirakl_id VARCHAR(255) NOT NULL,
        type VARCHAR(255) NOT NULL,
        transfer_id VARCHAR(255) DEFAULT NULL,
        transaction_id VARCHAR(255) DEFAULT NULL,
        amount INT DEFAULT NULL,
        status VARCHAR(255) NOT NULL,
        status_reason VARCHAR(1024) DEFAULT NULL,
        currency VARCHAR(255) DEFAULT NULL,
        mirakl_created_date TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        CONSTRAINT transfer UNIQUE (type, mirakl_id))""",
    """CREATE TABLE stripe_payout (
        id SERIAL PRIMARY KEY,
        account_mapping_id INT DEFAULT NULL REFERENCES account_mapping (id),
        amount INT DEFAULT 0,
        currency VARCHAR(255) DEFAULT NULL,
        mirakl_invoice_id INT NOT NULL,
        payout_id VARCHAR(255) DEFAULT NULL,
        status VARCHAR(255) NOT NULL,
        status_reason VARCHAR(1024) DEFAULT NULL,
        mirakl_created_date TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL)""",
    "CREATE UNIQUE INDEX uniq_mirakl_invoice_id ON stripe_payout (mirakl_invoice_id)",
    """CREATE TABLE stripe_refund (
        id SERIAL PRIMARY KEY,
        type VARCHAR(255) DEFAULT 'REFUND_PRODUCT_ORDER' NOT NULL,
        amount INT NOT NULL,
        currency VARCHAR(255) NOT NULL,
        mirakl_refund_id VARCHAR(255) NOT NULL,
        mirakl_commercial_order_id VARCHAR(255) DEFAULT NULL,
        mirakl_order_id VARCHAR(255) NOT NULL,
        mirakl_order_line_id VARCHAR(255) DEFAULT NULL,
        transaction_id VARCHAR(255) DEFAULT NULL,
        stripe_refund_id VARCHAR(255) DEFAULT NULL,
        status VARCHAR(255) NOT NULL,
        status_reason VARCHAR(1024) DEFAULT NULL,
        mirakl_validation_time TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL)""",
    "CREATE UNIQUE INDEX uniq_mirakl_refund_id ON stripe_refund (mirakl_refund_id)",
    # Symfony Messenger's queue table and Doctrine's migration log: present, never imported.
    """CREATE TABLE messenger_messages (
        id BIGSERIAL PRIMARY KEY,
        body TEXT NOT NULL,
        headers TEXT NOT NULL,
        queue_name VARCHAR(190) NOT NULL,
        created_at TIMESTAMP(0) WITHOUT TIME ZONE NOT NULL,
        available_at TIMESTAMP(0) WITHOUT TIME ZONE NOT NULL,
        delivered_at TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL)""",
    """CREATE TABLE doctrine_migration_versions (
        version VARCHAR(191) PRIMARY KEY,
        executed_at TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL,
        execution_time INT DEFAULT NULL)""",
    "INSERT INTO doctrine_migration_versions (version, executed_at) VALUES"
    " ('DoctrineMigrations\\Version20230309085516', '2023-03-09 08:55:16')",
)

CHECKPOINTS = {
    "product_payment_split_checkpoint": "2024-01-05T10:00:00+0000",
    "service_payment_split_checkpoint": "2024-01-05T10:00:00.000Z",
    "seller_settlement_checkpoint": "2024-01-04T00:00:00+0000",
    "seller_onboarding_checkpoint": "2024-01-03T12:00:00+0000",
}
OLD = datetime(2024, 1, 5, 9, 0, 0)  # when the seeded rows were written


def create_reference_db(server_url: str) -> str:
    """A new PostgreSQL database with the reference's tables; its URL."""
    name = f"reference_connector_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{server_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(url) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
    return url


def drop_reference_db(url: str) -> None:
    """Drop a database made by ``create_reference_db``."""
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def insert(url: str, table: str, rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """Insert rows (column → value) into a reference table; their ids (none for config keys)."""
    ids: list[int] = []
    with psycopg.connect(url) as conn:
        for row in rows:
            statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING id").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(column) for column in row),
                sql.SQL(", ").join(sql.Placeholder() * len(row)),
            )
            ids.append(conn.execute(statement, list(row.values())).fetchone()[0])
    return ids


def set_checkpoints(url: str, checkpoints: Mapping[str, str | None] = CHECKPOINTS) -> None:
    """The reference's ``config`` rows."""
    insert(url, "config", [{"key": key, "value": value} for key, value in checkpoints.items()])


def seed_example(url: str, accounts: Mapping[int, str]) -> dict[str, int]:
    """Shops (``accounts``: shop id → ``acct_…``), payments, transfers in every status,
    refunds and payouts, and checkpoints; row counts per table.

    Shop ids are used in order: the first shop gets the money rows.
    """
    shops = list(accounts)
    mapping_ids = insert(
        url,
        "account_mapping",
        [
            {
                "mirakl_shop_id": shop,
                "stripe_account_id": account,
                "payout_enabled": True,
                "payin_enabled": True,
                "onboarding_token": None if index == 0 else f"{index:032x}",
                "creation_datetime": OLD,
                "modification_datetime": OLD,
            }
            for index, (shop, account) in enumerate(accounts.items())
        ],
    )
    seller = mapping_ids[0]
    stamps = {"creation_datetime": OLD, "modification_datetime": OLD}
    insert(
        url,
        "payment_mapping",
        [
            {"mirakl_commercial_order_id": "CO-1", "stripe_charge_id": "ch_ref_1",
             "status": "captured", "stripe_amount": 10000, **stamps},
            {"mirakl_commercial_order_id": "CO-2", "stripe_charge_id": "ch_ref_2",
             "status": "to_capture", "stripe_amount": 2000, **stamps},
            {"mirakl_commercial_order_id": "CO-3", "stripe_charge_id": "ch_ref_3",
             "status": "canceled", "stripe_amount": 3000, **stamps},
        ],
    )  # fmt: skip
    order = {"type": "TRANSFER_PRODUCT_ORDER", "currency": "eur", "account_mapping_id": seller}
    statuses = {
        "CO-1-A": ("TRANSFER_CREATED", "tr_ref_1", None),
        "CO-4-A": ("TRANSFER_ON_HOLD", None, "Order is not ready yet, status is SHIPPING"),
        "CO-5-A": ("TRANSFER_FAILED", None, "Insufficient funds"),
        "CO-6-A": ("TRANSFER_ABORTED", None, "Order cannot be processed, status is CANCELED"),
        "CO-7-A": ("TRANSFER_IGNORED", None, f"Shop {shops[0]} is ignored"),
        "CO-8-A": ("TRANSFER_PENDING", None, None),
    }
    insert(
        url,
        "stripe_transfer",
        [
            {**order, "mirakl_id": mirakl_id, "status": status, "transfer_id": transfer_id,
             "status_reason": reason, "amount": 8000, "transaction_id": "ch_ref_1",
             "mirakl_created_date": OLD, **stamps}
            for mirakl_id, (status, transfer_id, reason) in statuses.items()
        ]
        + [
            {"type": "TRANSFER_REFUND", "mirakl_id": "R-1", "status": "TRANSFER_CREATED",
             "transfer_id": "trr_ref_1", "transaction_id": "tr_ref_1", "amount": 500,
             "currency": "eur", **stamps},
            {"type": "TRANSFER_SUBSCRIPTION", "mirakl_id": "501", "account_mapping_id": seller,
             "status": "TRANSFER_CREATED", "transfer_id": "tr_ref_sub", "amount": 999,
             "currency": "eur", "mirakl_created_date": OLD, **stamps},
        ],
    )  # fmt: skip
    insert(
        url,
        "stripe_refund",
        [
            {"mirakl_refund_id": "R-1", "mirakl_order_id": "CO-1-A",
             "mirakl_commercial_order_id": "CO-1", "mirakl_order_line_id": "CO-1-A-1",
             "amount": 500, "currency": "eur", "transaction_id": "ch_ref_1",
             "stripe_refund_id": "re_ref_1", "status": "REFUND_CREATED",
             "mirakl_validation_time": OLD, **stamps},
            {"mirakl_refund_id": "R-2", "mirakl_order_id": "CO-9-A",
             "amount": 700, "currency": "eur", "status": "REFUND_ON_HOLD",
             "status_reason": "Cannot find the ID of the payment to be refunded", **stamps},
        ],
    )  # fmt: skip
    insert(
        url,
        "stripe_payout",
        [
            {"account_mapping_id": seller, "amount": 5000, "currency": "eur",
             "mirakl_invoice_id": 501, "payout_id": "po_ref_1", "status": "PAYOUT_CREATED",
             "mirakl_created_date": OLD, **stamps},
            {"account_mapping_id": seller, "amount": 0, "currency": "eur",
             "mirakl_invoice_id": 502, "status": "PAYOUT_ABORTED",
             "status_reason": "Amount must be positive, input was: 0",
             "mirakl_created_date": OLD, **stamps},
        ],
    )  # fmt: skip
    set_checkpoints(url)
    return {
        "account_mapping": len(accounts),
        "config": len(CHECKPOINTS),
        "payment_mapping": 3,
        "stripe_transfer": len(statuses) + 2,
        "stripe_refund": 2,
        "stripe_payout": 2,
    }
