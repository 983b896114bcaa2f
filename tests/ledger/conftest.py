"""Fixtures of the ledger's tests: an app on each database, and a transfer row to act on.

The ledger is what makes money move exactly once, so its tests run on SQLite and PostgreSQL
alike: locks and compare-and-set behave differently on the two.
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from flask_migrate import upgrade
from freezegun import freeze_time

from tests.conftest import _empty_tables
from webapp import create_app
from webapp.db_cli import init_migrations
from webapp.extensions import db
from webapp.models import StripeTransfer, TransferStatus, TransferType
from webapp.services.ledger import transitions

# ``TEST_LEDGER_DBS=postgres`` runs these tests on PostgreSQL alone. Only ``make mutate`` sets
# it, to halve the time of each mutant's run (docs/testing.md, "Mutation testing"); CI and
# ``make test`` run both databases.
LEDGER_DBS = os.environ.get("TEST_LEDGER_DBS", "sqlite,postgres").split(",")


@pytest.fixture(scope="module", params=LEDGER_DBS)
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


# A time the clock stops at, so that a bound (claim staleness, backoff, lease expiry) can be
# checked at its exact value rather than a few seconds either side.
NOW = datetime(2026, 3, 2, 10, 0, 0, 123456)


@pytest.fixture
def frozen():
    """The connector's clock (``webapp.clock.utcnow``) stopped at ``NOW``."""
    # pytest's own timings (and mutmut's, which reads them) keep the real clock.
    with freeze_time(NOW, ignore=["_pytest", "pytest", "mutmut"]) as clock:
        yield clock


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
