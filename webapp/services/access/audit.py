"""The audit trail: every operator action, who did it, when, on what, why and what came of it.

Rows are only ever inserted (the database refuses updates); ``record`` adds one to the
session and the caller commits with the action's own effect, or ``record_now`` commits it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import REASON_LENGTH, AuditEvent

TARGET_LENGTH = 64  # characters of target_id
MIRAKL_ID_LENGTH = 255


def _cut(text: str | None, length: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= length else text[: length - 1] + "…"


def record(
    action: str,
    *,
    actor: str,
    target_type: str | None = None,
    target_id: object = None,
    mirakl_id: str | None = None,
    reason: str | None = None,
    outcome: str | None = None,
) -> AuditEvent:
    """Add one audit row to the session (not committed)."""
    event = AuditEvent(
        actor=_cut(actor, 255) or "unknown",
        action=action,
        target_type=target_type,
        target_id=_cut(None if target_id is None else str(target_id), TARGET_LENGTH),
        mirakl_id=_cut(mirakl_id, MIRAKL_ID_LENGTH),
        reason=_cut(reason, REASON_LENGTH),
        outcome=_cut(outcome, REASON_LENGTH),
    )
    db.session.add(event)
    return event


def record_now(action: str, **fields: object) -> None:
    """``record`` then commit, for actions whose effect is already committed (or is none)."""
    record(action, **fields)  # type: ignore[arg-type]
    db.session.commit()


def list_for(target_type: str, target_ids: Sequence[object]) -> list[AuditEvent]:
    """The audit rows of these targets, oldest first."""
    if not target_ids:
        return []
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(
                AuditEvent.target_type == target_type,
                AuditEvent.target_id.in_([str(i) for i in target_ids]),
            )
            .order_by(AuditEvent.id)
        ).scalars()
    )
