"""The connector's jobs, one module per CLI command, listed by import (not discovered).

Each job module has a docstring naming its command and schedule, and defines ``NAME``,
``SCHEDULE`` (cron, UTC), ``PARAMS`` (extra click parameters) and ``run(ctx, **params)``.
A new job is one more module here.
"""

from __future__ import annotations

from types import ModuleType

from webapp.jobs import (
    monitor_kyc_status,
    notify_failed_operation,
    process_payout,
    process_refund,
    process_transfer,
    sync_onboarding,
    validate_pending_debit,
)

JOBS: dict[str, ModuleType] = {
    module.NAME: module
    for module in sorted(
        (
            monitor_kyc_status,
            notify_failed_operation,
            process_payout,
            process_refund,
            process_transfer,
            sync_onboarding,
            validate_pending_debit,
        ),
        key=lambda m: m.NAME,
    )
}


def job_modules() -> list[ModuleType]:
    """Every job module, ordered by command name."""
    return list(JOBS.values())


def get_job(name: str) -> ModuleType:
    """The job module of a command name, e.g. ``process-transfer``.

    Raises:
        KeyError: no job of that name.
    """
    try:
        return JOBS[name]
    except KeyError:
        raise KeyError(f"unknown job {name!r}") from None
