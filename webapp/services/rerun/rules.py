"""Which jobs read Mirakl by date, and the checkpoint string each one expects: pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DatedJob:
    """A checkpoint key, the job that reads from it, and the Mirakl call it feeds."""

    key: str
    job: str
    reads: str
    rfc3339: bool  # SOR11 takes RFC 3339 with milliseconds; the others PHP's ISO 8601


DATED_JOBS = (
    DatedJob("product_payment_split_checkpoint", "process-transfer",
             "product orders (OR11 start_date)", False),
    DatedJob("service_payment_split_checkpoint", "process-transfer",
             "service orders (SOR11 date_created_start)", True),
    DatedJob("seller_settlement_checkpoint", "process-payout",
             "invoices (IV01 start_date)", False),
    DatedJob("seller_onboarding_checkpoint", "sync-onboarding",
             "shops (S20 updated_since)", False),
)  # fmt: skip


def get_dated_job(key: str) -> DatedJob:
    """The dated job of a checkpoint key.

    Raises:
        ValueError: not a checkpoint key.
    """
    for job in DATED_JOBS:
        if job.key == key:
            return job
    raise ValueError(f"unknown checkpoint {key!r}")


def checkpoint_value(job: DatedJob, start: datetime) -> str:
    """The checkpoint string for a UTC start, in the format the job's Mirakl call was given
    by Mirakl itself (``2026-11-20T00:00:00+0000`` or ``2026-11-20T00:00:00.000+00:00``)."""
    if job.rfc3339:
        return start.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
    return start.strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_start(day: str, time: str = "") -> datetime:
    """A start from the form's date (``YYYY-MM-DD``) and optional time (``HH:MM``), UTC.

    Raises:
        ValueError: not a date or time.
    """
    text = f"{day.strip()}T{(time or '00:00').strip()}"
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise ValueError(f"{day} {time} is not a date (YYYY-MM-DD) and time (HH:MM)") from None
