"""Console roles and what each may do: pure, no ``db`` and no request.

``viewer`` reads everything and changes nothing; ``operator`` also acts on money rows, shops
and jobs (retry, abort, ignore, run now, new link); ``admin`` also manages console users and
sets where the date-reading jobs start their next run.
"""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

ACT = "act"  # retry, abort, ignore, run now, new link, push KYC
MANAGE_USERS = "manage_users"  # invite, disable, enable, reset password, change role
SET_CHECKPOINTS = "set_checkpoints"  # rerun from a date

PERMISSIONS: dict[str, frozenset[str]] = {
    VIEWER: frozenset(),
    OPERATOR: frozenset({ACT}),
    ADMIN: frozenset({ACT, MANAGE_USERS, SET_CHECKPOINTS}),
}


def can(role: str | None, permission: str) -> bool:
    """Whether a user of ``role`` may do ``permission`` (unknown roles may do nothing)."""
    return permission in PERMISSIONS.get(role or "", frozenset())


def check_role(role: str) -> str:
    """The role, validated.

    Raises:
        ValueError: not one of viewer, operator, admin.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: {', '.join(ROLES)}")
    return role
