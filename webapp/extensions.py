"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

from __future__ import annotations

import sqlite3
import time

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Named constraints so that migrations behave the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite in WAL mode: readers never block the writer, and a commit costs no full fsync.

    WAL with synchronous=NORMAL survives a killed process (the crash case money jobs are built
    for); PostgreSQL is the production database.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


PING_AFTER_IDLE = 10.0  # seconds a pooled connection may rest before it is checked on checkout


@event.listens_for(Pool, "checkin")
def _note_checkin(_dbapi_connection, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def ping_idle_connections(dbapi_connection, record, _proxy) -> None:
    """A connection that rested in the pool is checked before use; a dead one is replaced.

    SQLAlchemy's ``pool_pre_ping`` checks on every checkout, and a session checks a
    connection out per transaction: two round trips per money job for nothing, on a
    connection used milliseconds before. A server restart or a dropped connection is still
    caught on the first use after a pause.
    """
    rested_since = record.info.get("checked_in_at")  # None: a connection made just now
    if isinstance(dbapi_connection, sqlite3.Connection) or rested_since is None:
        return
    if time.monotonic() - rested_since < PING_AFTER_IDLE:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        # Leave the connection as the pool gave it: not inside a transaction.
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001 - any driver error: the pool reconnects
        raise DisconnectionError(f"pooled connection is dead: {type(exc).__name__}") from exc
