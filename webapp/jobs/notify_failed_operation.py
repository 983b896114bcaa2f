"""E-mail the digest of failed transfers, refunds, payouts: ``connector notify-failed-operation``.

Schedule: daily at 08:00 UTC. Nothing failed → no e-mail; the summary line says so either way.
"""

from __future__ import annotations

from webapp.jobs.runner import JobContext
from webapp.services.notify import alerts

NAME = "notify-failed-operation"
SCHEDULE = "0 8 * * *"


def run(ctx: JobContext) -> None:
    outcome = alerts.send_failed_operations_digest()
    if not any(outcome.counts.values()):
        note = "nothing to report, no e-mail"
    elif outcome.is_sent:
        note = "digest e-mailed"
    else:
        note = "digest NOT e-mailed (mail disabled, no recipient or send error)"
    ctx.report("failed operations", outcome.counts, note=note)
