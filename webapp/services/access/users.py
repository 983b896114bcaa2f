"""Console users: found by e-mail, created (``connector create-admin``), and managed from the
console by an admin: invite, disable, enable, reset, role.

Passwords are generated here and returned once to the caller (shown on the answering page,
never flashed, logged or stored other than hashed). Every change made from the console is
audited.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import OperatorUser
from webapp.services.access import audit
from webapp.services.access.roles import ADMIN, check_role

log = logging.getLogger(__name__)

PASSWORD_BYTES = 18  # secrets.token_urlsafe(18): 24 characters


def generate_password() -> str:
    """A strong random password (shown once)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def list_users() -> list[OperatorUser]:
    """Every console user, by e-mail."""
    return list(db.session.execute(select(OperatorUser).order_by(OperatorUser.email)).scalars())


def get_user(user_id: int) -> OperatorUser:
    """The console user with this id.

    Raises:
        LookupError: no such user.
    """
    user = db.session.get(OperatorUser, user_id)
    if user is None:
        raise LookupError(f"console user {user_id} doesn't exist")
    return user


def _active_admins() -> int:
    return len(
        db.session.execute(
            select(OperatorUser.id).where(
                OperatorUser.role == ADMIN, OperatorUser.disabled_at.is_(None)
            )
        ).all()
    )


def _keep_an_admin(user: OperatorUser) -> None:
    """Raise ValueError if the change would leave the console without an active admin."""
    if user.role == ADMIN and user.disabled_at is None and _active_admins() <= 1:
        raise ValueError(f"{user.email} is the last active admin")


def set_role(user_id: int, role: str, *, actor: str) -> OperatorUser:
    """Give a user another role (audited).

    Raises:
        ValueError: unknown role, or the last admin would lose the role.
    """
    check_role(role)
    user = get_user(user_id)
    if role != ADMIN:
        _keep_an_admin(user)
    before = user.role
    user.role = role
    audit.record("user_role", actor=actor, target_type="user", target_id=user.id,
                 mirakl_id=user.email, outcome=f"{before} → {role}")  # fmt: skip
    db.session.commit()
    return user


def disable_user(user_id: int, *, actor: str) -> OperatorUser:
    """Stop a user from logging in; their open sessions stop working (audited).

    Raises:
        ValueError: the last active admin cannot be disabled.
    """
    user = get_user(user_id)
    _keep_an_admin(user)
    user.disabled_at = user.disabled_at or utcnow()
    audit.record("user_disable", actor=actor, target_type="user", target_id=user.id,
                 mirakl_id=user.email, outcome="disabled")  # fmt: skip
    db.session.commit()
    log.info("console user %s: disabled by %s", user.id, actor)
    return user


def enable_user(user_id: int, *, actor: str) -> OperatorUser:
    """Let a disabled user log in again (audited)."""
    user = get_user(user_id)
    user.disabled_at = None
    user.failed_logins = 0
    user.locked_until = None
    audit.record("user_enable", actor=actor, target_type="user", target_id=user.id,
                 mirakl_id=user.email, outcome="enabled")  # fmt: skip
    db.session.commit()
    return user


def reset_password(user_id: int, *, actor: str) -> tuple[OperatorUser, str]:
    """Give a user a new generated password; returns it once (audited, never logged)."""
    user = get_user(user_id)
    password = generate_password()
    user.password_hash = generate_password_hash(password)
    user.failed_logins = 0
    user.locked_until = None
    audit.record("user_reset_password", actor=actor, target_type="user", target_id=user.id,
                 mirakl_id=user.email, outcome="new password generated")  # fmt: skip
    db.session.commit()
    return user, password


def find_user(email: str) -> OperatorUser | None:
    """The console user with this e-mail (case-insensitive), or None."""
    if "\x00" in email:  # no address holds NUL, and PostgreSQL refuses to compare one
        return None
    return db.session.execute(
        select(OperatorUser).where(func.lower(OperatorUser.email) == email.strip().lower())
    ).scalar_one_or_none()


def create_user(email: str, password: str, role: str = "admin") -> OperatorUser:
    """Add a console user with a hashed password (committed); admin unless told otherwise.

    Raises:
        ValueError: the e-mail already has an account, or the role is unknown.
    """
    check_role(role)
    if find_user(email) is not None:
        raise ValueError(f"{email} already has an account")
    user = OperatorUser(
        email=email.strip().lower(), password_hash=generate_password_hash(password), role=role
    )
    db.session.add(user)
    db.session.commit()
    return user


def invite_user(email: str, role: str, *, actor: str) -> tuple[OperatorUser, str]:
    """Add a console user with a generated password, returned once (audited).

    Raises:
        ValueError: not an e-mail address, unknown role, or the address has an account.
    """
    check_role(role)
    email = email.strip().lower()
    if "@" not in email or "\x00" in email or len(email) > 255:
        raise ValueError(f"{email!r} is not an e-mail address")
    taken = db.session.execute(select(OperatorUser.id).where(OperatorUser.email == email)).first()
    if taken is not None:
        raise ValueError(f"{email} already has an account")
    password = generate_password()
    user = OperatorUser(email=email, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.flush()
    audit.record("user_invite", actor=actor, target_type="user", target_id=user.id,
                 mirakl_id=email, outcome=f"invited as {role}")  # fmt: skip
    db.session.commit()
    log.info("console user %s: invited as %s by %s", user.id, role, actor)
    return user, password
