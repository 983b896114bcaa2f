"""Failed console logins: who may still try, counted atomically.

Policy (docs/security.md):

1. **Per account and client IP**: ``ACCOUNT_IP_LIMIT`` wrong passwords for one e-mail from
   one IP within ``ACCOUNT_IP_WINDOW`` lock that e-mail for that IP for the same time. An
   attacker elsewhere cannot lock the operator out of their own office: other IPs still log in.
2. **Per client IP**: ``IP_LIMIT`` failed logins from one IP, on any e-mail, within
   ``IP_WINDOW`` refuse every login from that IP for the same time (password spraying).
3. **Per account**: ``ACCOUNT_LIMIT`` wrong passwords in a row from all IPs together lock the
   account for ``ACCOUNT_LOCK``: a guesser spread over many IPs is bounded too, and locking
   the account that way takes many IPs, not 5 requests.

Unknown e-mails are counted exactly like known ones (rules 1 and 2), so the answers and
their timing never tell whether an account exists. Every count is one statement
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``, ``UPDATE … SET n = n + 1``): concurrent
attempts cannot read the same count and slip past a limit.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import LoginThrottle, OperatorUser

log = logging.getLogger(__name__)

ACCOUNT_IP_LIMIT = 5  # wrong passwords for one e-mail from one IP
ACCOUNT_IP_WINDOW = timedelta(minutes=5)  # counting window, and the lock's length
IP_LIMIT = 30  # failed logins from one IP, all e-mails together
IP_WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 100  # wrong passwords in a row for one account, all IPs together
ACCOUNT_LOCK = timedelta(minutes=15)


def throttle_keys(email: str, ip: str) -> tuple[str, str]:
    """(per-IP key, per-e-mail-and-IP key); the e-mail is hashed, never stored."""
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"ip:{ip}"[:128], f"account-ip:{account}:{ip}"[:128]


def is_throttled(email: str, ip: str, user: OperatorUser | None, now: datetime) -> bool:
    """Whether a login for ``email`` from ``ip`` is refused now, whatever the password."""
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return True
    locked = db.session.execute(
        select(LoginThrottle.key).where(
            LoginThrottle.key.in_(throttle_keys(email, ip)), LoginThrottle.locked_until > now
        )
    ).first()
    return locked is not None


def _count(key: str, limit: int, window: timedelta, now: datetime) -> int:
    """Add one failure to ``key`` within its window, locking it at ``limit``; return the count."""
    insert = (postgresql if db.engine.dialect.name == "postgresql" else sqlite).insert
    table = LoginThrottle
    expired = table.window_started_at <= now - window
    failures = case((expired, 1), else_=table.failures + 1)
    statement = (
        insert(table)
        .values(key=key, failures=1, window_started_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=[table.key],
            set_={
                "failures": failures,
                "window_started_at": case((expired, now), else_=table.window_started_at),
                "locked_until": case((failures >= limit, now + window), else_=table.locked_until),
            },
        )
        .returning(table.failures)
    )
    return db.session.execute(statement).scalar_one()


def record_failure(email: str, ip: str, user: OperatorUser | None, now: datetime) -> None:
    """Count one failed login (committed). An unknown e-mail costs the same statements."""
    ip_key, account_key = throttle_keys(email, ip)
    ip_failures = _count(ip_key, IP_LIMIT, IP_WINDOW, now)
    account_ip_failures = _count(account_key, ACCOUNT_IP_LIMIT, ACCOUNT_IP_WINDOW, now)
    reaches_limit = OperatorUser.failed_logins + 1 >= ACCOUNT_LIMIT
    # ``id IS NULL`` for an unknown e-mail: the same statement, matching no row.
    account_failures = db.session.execute(
        update(OperatorUser)
        .where(OperatorUser.id == (user.id if user is not None else None))
        .values(
            failed_logins=case((reaches_limit, 0), else_=OperatorUser.failed_logins + 1),
            locked_until=case((reaches_limit, now + ACCOUNT_LOCK), else_=OperatorUser.locked_until),
        )
        .returning(OperatorUser.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    db.session.commit()
    if user is not None and account_failures == 0:
        log.warning("operator %s: locked for %s after failed logins", user.id, ACCOUNT_LOCK)
    if account_ip_failures == ACCOUNT_IP_LIMIT or ip_failures == IP_LIMIT:
        log.warning("login throttle: client %s locked after failed logins", ip)


def record_success(email: str, ip: str, user: OperatorUser, now: datetime) -> None:
    """A right password: clear this e-mail's count for this IP and the account's (committed)."""
    _, account_key = throttle_keys(email, ip)
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key))
    db.session.execute(
        update(OperatorUser)
        .where(OperatorUser.id == user.id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def purge_stale_counters(now: datetime) -> int:
    """Delete counters whose window and lock are both over; return how many."""
    oldest = now - max(IP_WINDOW, ACCOUNT_IP_WINDOW)
    result = db.session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_started_at < oldest,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
        )
    )
    db.session.commit()
    return result.rowcount
