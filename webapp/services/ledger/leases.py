"""Named leases: locks with an expiry, kept in the database.

The lock must be seen by CLI runs (which work without Redis) and by workers alike, so it
lives in the database. A holder that dies simply stops renewing; its lease expires after
``ttl`` seconds and the next run takes over. Every call runs in its own short transaction,
independent of the caller's session, so a lease is visible to others at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Lease


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


def acquire(name: str, holder: str, ttl: float) -> bool:
    """Take the lease if it is free or expired (or already ours); return whether we hold it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                insert(Lease).values(name=name, holder=holder, acquired_at=now, expires_at=expires)
            )
        return True
    except IntegrityError:
        pass
    with db.engine.begin() as conn:
        taken = conn.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.expires_at < now, Lease.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
    return taken.rowcount == 1


def renew(name: str, holder: str, ttl: float) -> bool:
    """Push our lease's expiry forward; False if we lost it (it expired and was taken)."""
    try:
        with db.engine.begin() as conn:
            renewed = conn.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(expires_at=utcnow() + timedelta(seconds=ttl))
            )
    except OperationalError:
        # A busy SQLite file; the next heartbeat tries again well before expiry.
        return True
    return renewed.rowcount == 1


def release(name: str, holder: str) -> None:
    """Give the lease back if we still hold it."""
    with db.engine.begin() as conn:
        conn.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


def find(name: str) -> LeaseInfo | None:
    """The current, unexpired holder of a lease, or None."""
    with db.engine.connect() as conn:
        row = conn.execute(select(Lease).where(Lease.name == name)).first()
    if row is None or row.expires_at < utcnow():
        return None
    return LeaseInfo(row.name, row.holder, row.acquired_at, row.expires_at)
