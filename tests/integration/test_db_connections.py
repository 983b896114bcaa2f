"""Pooled PostgreSQL connections: checked after a rest, replaced when dead, not pinged when
just used."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from webapp import create_app, extensions
from webapp.db_cli import init_migrations
from webapp.extensions import db


@pytest.fixture
def pg_app(base_env, postgres_url):
    app = create_app({**base_env, "DATABASE_URL": postgres_url})
    init_migrations(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _kill(url: str, pid: int) -> None:
    """Terminate one server process, as a restart or a dropped connection would."""
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def _pooled_backend() -> int:
    """The server process behind the connection the session uses, then back to the pool."""
    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    db.session.remove()
    return pid


def test_a_connection_killed_while_resting_is_replaced(pg_app, postgres_url, monkeypatch):
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE", 0.0)
    _kill(postgres_url, _pooled_backend())

    assert db.session.execute(text("SELECT 2")).scalar_one() == 2


def test_a_connection_used_just_before_is_not_pinged(pg_app, postgres_url):
    """No round trip is spent on a connection that rested less than ``PING_AFTER_IDLE``: here
    the dead connection is only found by the statement itself (the pool then reconnects)."""
    _kill(postgres_url, _pooled_backend())

    with pytest.raises(OperationalError, match="terminat"):
        db.session.execute(text("SELECT 2")).scalar_one()
    db.session.rollback()
    assert db.session.execute(text("SELECT 3")).scalar_one() == 3  # the pool reconnected
