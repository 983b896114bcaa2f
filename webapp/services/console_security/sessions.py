"""Console sessions held server-side, so that logout and the timeouts really end them.

The signed session cookie carries a random handle; the ``console_session`` row holds its
SHA-256, the user, a stamp of the user's password hash and when it was made and last used.
A request is logged in only while that row exists and is sound: deleted at logout, refused
once the password changed, the user is disabled or deleted, or a timeout passed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import ConsoleSession, OperatorUser

log = logging.getLogger(__name__)

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often per session


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def credential_stamp(user: OperatorUser) -> str:
    """Changes whenever the user's password does: a session made before a change is void."""
    return hashlib.sha256(("stamp:" + user.password_hash).encode()).hexdigest()


def start_session(user: OperatorUser, now: datetime | None = None) -> str:
    """Record a new session for ``user`` (committed); return its handle for the cookie."""
    now = now or utcnow()
    handle = secrets.token_urlsafe(32)
    db.session.add(
        ConsoleSession(
            handle_hash=_digest(handle),
            operator_user_id=user.id,
            credential_stamp=credential_stamp(user),
            created_at=now,
            last_seen_at=now,
        )
    )
    db.session.commit()
    return handle


def is_session_sound(
    row: ConsoleSession,
    user: OperatorUser | None,
    now: datetime,
    *,
    idle: timedelta,
    lifetime: timedelta,
) -> bool:
    """Whether ``row`` still logs ``user`` in at ``now`` (pure).

    1. the user still exists and is active (not disabled);
    2. the password did not change since the login;
    3. the session was used within ``idle``;
    4. it is younger than ``lifetime`` (absolute timeout), however busy.
    """
    if user is None or not getattr(user, "is_active", True):
        return False
    if row.credential_stamp != credential_stamp(user):
        return False
    if now - row.last_seen_at > idle:
        return False
    return now - row.created_at <= lifetime


def find_session_user(
    handle: str | None, *, idle: timedelta, lifetime: timedelta, now: datetime | None = None
) -> OperatorUser | None:
    """The user this handle logs in, or None (an unsound session is deleted)."""
    if not handle or not isinstance(handle, str):
        return None
    now = now or utcnow()
    row = db.session.execute(
        select(ConsoleSession).where(ConsoleSession.handle_hash == _digest(handle))
    ).scalar_one_or_none()
    if row is None:
        return None
    user = db.session.get(OperatorUser, row.operator_user_id)
    if not is_session_sound(row, user, now, idle=idle, lifetime=lifetime):
        log.info("console session %s: ended (timeout, password change or user disabled)", row.id)
        db.session.delete(row)
        db.session.commit()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    return user


def end_session(handle: str | None) -> bool:
    """Delete the session of this handle (logout); return whether there was one."""
    if not handle or not isinstance(handle, str):
        return False
    result = db.session.execute(
        delete(ConsoleSession).where(ConsoleSession.handle_hash == _digest(handle))
    )
    db.session.commit()
    return result.rowcount > 0


def end_user_sessions(user_id: int) -> int:
    """Delete every session of a user (disable, password reset); return how many ended."""
    result = db.session.execute(
        delete(ConsoleSession).where(ConsoleSession.operator_user_id == user_id)
    )
    db.session.commit()
    return result.rowcount


def purge_expired_sessions(
    *, idle: timedelta, lifetime: timedelta, now: datetime | None = None
) -> int:
    """Delete the sessions past either timeout; return how many."""
    now = now or utcnow()
    result = db.session.execute(
        delete(ConsoleSession).where(
            or_(
                ConsoleSession.last_seen_at < now - idle,
                ConsoleSession.created_at < now - lifetime,
            )
        )
    )
    db.session.commit()
    return result.rowcount
