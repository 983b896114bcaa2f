"""Leases and checkpoints in detail: which row each call touches, the exact expiry, and the
paths taken when another process got there first or the database is briefly unavailable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, insert, select, update

from tests.ledger.conftest import NOW
from webapp.extensions import db
from webapp.models import Config, Lease
from webapp.services.ledger import checkpoints, leases
from webapp.services.ledger.leases import LeaseInfo

TTL = 30


def expiry(name: str):
    return db.session.execute(select(Lease.expires_at).where(Lease.name == name)).scalar_one()


def test_a_lease_records_its_holder_and_times(dapp, frozen):
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    assert leases.find("job:a") == LeaseInfo("job:a", "run:1", NOW, NOW + timedelta(seconds=TTL))


def test_the_holder_takes_its_lease_again_and_pushes_its_expiry(dapp, frozen):
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    frozen.tick(timedelta(seconds=10))
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    later = NOW + timedelta(seconds=10)
    assert leases.find("job:a") == LeaseInfo(
        "job:a", "run:1", later, later + timedelta(seconds=TTL)
    )


def test_a_lease_is_held_up_to_its_expiry_and_free_just_after(dapp, frozen):
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    frozen.tick(timedelta(seconds=TTL))  # exactly the expiry
    assert leases.find("job:a").holder == "run:1"
    assert not leases.acquire("job:a", "run:2", ttl=TTL)
    frozen.tick(timedelta(microseconds=1))
    assert leases.find("job:a") is None
    assert leases.acquire("job:a", "run:2", ttl=TTL)
    assert leases.find("job:a").holder == "run:2"


def test_leases_of_other_names_are_left_alone(dapp, frozen):
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    assert leases.acquire("job:b", "run:1", ttl=TTL)
    assert leases.acquire("job:c", "run:1", ttl=TTL)
    assert leases.acquire("job:d", "run:2", ttl=TTL)
    expired = Lease.name.in_(["job:a", "job:d"])
    db.session.execute(update(Lease).where(expired).values(expires_at=NOW))
    db.session.commit()
    frozen.tick(timedelta(seconds=1))

    assert leases.acquire("job:a", "run:3", ttl=60)  # expired: taken over, job:d is not
    assert leases.acquire("job:b", "run:1", ttl=60)  # ours again: job:c stays as it was
    assert leases.renew("job:b", "run:1", ttl=90)
    assert [leases.find(n).holder for n in ("job:a", "job:b", "job:c")] == [
        "run:3",
        "run:1",
        "run:1",
    ]
    assert (expiry("job:c"), expiry("job:d")) == (NOW + timedelta(seconds=TTL), NOW)

    leases.release("job:b", "run:2")  # not its holder: nothing happens
    assert leases.find("job:b").holder == "run:1"
    leases.release("job:b", "run:1")
    assert [leases.find(n) is not None for n in ("job:a", "job:b", "job:c")] == [
        True,
        False,
        True,
    ]


def test_renew_pushes_the_expiry_from_now(dapp, frozen):
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    frozen.tick(timedelta(seconds=20))
    assert leases.renew("job:a", "run:1", ttl=TTL)
    assert expiry("job:a") == NOW + timedelta(seconds=20 + TTL)


def test_a_heartbeat_the_database_turns_away_is_not_a_lost_lease(dapp):
    """A busy SQLite file answers "database is locked"; the next heartbeat tries again."""
    assert leases.acquire("job:a", "run:1", ttl=TTL)
    dbapi = db.engine.dialect.loaded_dbapi

    def busy(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("UPDATE LEASE"):
            raise dbapi.OperationalError("database is locked")

    event.listen(db.engine, "before_cursor_execute", busy)
    try:
        assert leases.renew("job:a", "run:1", ttl=TTL)
        assert leases.renew("job:a", "run:2", ttl=TTL)  # cannot tell: not reported lost
    finally:
        event.remove(db.engine, "before_cursor_execute", busy)
    assert not leases.renew("job:a", "run:2", ttl=TTL)


def test_checkpoints_are_kept_per_key(dapp):
    checkpoints.set_checkpoint("seller_settlement_checkpoint", "2024-01-02T00:00:00Z")
    checkpoints.set_checkpoint("seller_onboarding_checkpoint", "2024-05-06T00:00:00Z")
    db.session.commit()
    assert checkpoints.get_checkpoint("seller_settlement_checkpoint") == "2024-01-02T00:00:00Z"
    assert checkpoints.get_checkpoint("seller_onboarding_checkpoint") == "2024-05-06T00:00:00Z"
    assert checkpoints.get_checkpoint("product_payment_split_checkpoint") is None
    with pytest.raises(ValueError) as unknown:
        checkpoints.set_checkpoint("seller_settlement", "x")
    assert str(unknown.value) == "unknown checkpoint key 'seller_settlement'"


def test_a_checkpoint_row_another_run_created_first_is_used(dapp):
    """Two first runs: ours reads no row, the other inserts it, ours then reads theirs."""
    checkpoints.set_checkpoint("seller_onboarding_checkpoint", "other key")
    db.session.commit()
    key = "seller_settlement_checkpoint"

    done: list[bool] = []

    def other_run_inserts(_conn, _cursor, statement, *_args) -> None:
        if not done and statement.lstrip().upper().startswith("SELECT") and "config" in statement:
            done.append(True)
            with db.engine.begin() as other:
                other.execute(insert(Config).values(key=key, value="2024-03-04T00:00:00Z"))

    event.listen(db.engine, "after_cursor_execute", other_run_inserts)
    try:
        assert checkpoints.get_checkpoint(key) == "2024-03-04T00:00:00Z"
    finally:
        event.remove(db.engine, "after_cursor_execute", other_run_inserts)
    db.session.commit()
    rows = db.session.execute(select(Config.key, Config.value).order_by(Config.key)).all()
    assert [tuple(r) for r in rows] == [
        ("seller_onboarding_checkpoint", "other key"),
        ("seller_settlement_checkpoint", "2024-03-04T00:00:00Z"),
    ]


def test_reading_a_stored_checkpoint_is_one_select(dapp):
    """No insert attempt when the row exists: on SQLite that would take the write lock."""
    checkpoints.set_checkpoint("seller_settlement_checkpoint", "2024-01-02T00:00:00Z")
    checkpoints.set_checkpoint("seller_onboarding_checkpoint", "2024-05-06T00:00:00Z")
    db.session.commit()
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert checkpoints.get_checkpoint("seller_onboarding_checkpoint") == "2024-05-06T00:00:00Z"
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert statements == ["SELECT"]
