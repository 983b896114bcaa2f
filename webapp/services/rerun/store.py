"""Read and set the date checkpoints from the console, with the change in the audit trail."""

from __future__ import annotations

from datetime import datetime

from webapp.extensions import db
from webapp.services.access import audit
from webapp.services.ledger import checkpoints
from webapp.services.rerun.rules import DATED_JOBS, checkpoint_value, get_dated_job


def list_checkpoints() -> list[tuple[object, str | None]]:
    """Each dated job with its current checkpoint (None: the next run reads everything)."""
    found = [(job, checkpoints.get_checkpoint(job.key)) for job in DATED_JOBS]
    db.session.commit()  # a first read may have created the row
    return found


def rerun_from(key: str, start: datetime, *, actor: str, reason: str | None) -> str:
    """Make the job's next run start at ``start``; returns the stored value (committed).

    Raises:
        ValueError: unknown checkpoint key.
    """
    job = get_dated_job(key)
    before = checkpoints.get_checkpoint(key)
    value = checkpoint_value(job, start)
    checkpoints.set_checkpoint(key, value)
    audit.record("rerun_from", actor=actor, target_type="checkpoint", target_id=key,
                 mirakl_id=job.job, reason=reason,
                 outcome=f"{before or 'none'} → {value}")  # fmt: skip
    db.session.commit()
    return value
