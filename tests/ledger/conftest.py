"""Fixtures of the ledger's tests: an app on each database, and a transfer row to act on.

The ledger is what makes money move exactly once, so its tests run on SQLite and PostgreSQL
alike: locks and compare-and-set behave differently on the two.
"""

from __future__ import annotations

import pytest
from flask_migrate import upgrade

from tests.conftest import _empty_tables
from webapp import create_app
from webapp.db_cli import init_migrations
from webapp.extensions import db
from webapp.models import StripeTransfer, TransferStatus, TransferType
from webapp.services.ledger import transitions


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend_app(request, base_env):
    url = request.getfixturevalue(f"{request.param}_url")
    application = create_app({**base_env, "DATABASE_URL": url})
    init_migrations(application)
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def dapp(backend_app):
    with backend_app.app_context():
        _empty_tables()
        yield backend_app
        db.session.remove()


def new_transfer(mirakl_id: str = "O-1-A", status=TransferStatus.PENDING) -> StripeTransfer:
    """A committed order transfer row in ``status``."""
    row = StripeTransfer(
        mirakl_id=mirakl_id,
        type=TransferType.PRODUCT_ORDER,
        amount=8073,
        currency="eur",
        mirakl_shop_id=1,
    )
    transitions.create(row, status, None, actor="test")
    db.session.commit()
    return row
