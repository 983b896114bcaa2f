"""Prove that our records, Stripe and Mirakl agree: ``connector reconcile [--since] [--until]``.

Schedule: daily at 03:00 UTC (``SCHEDULE_RECONCILE`` overrides). Default window: the last
two days, stretched back to cover every finding still open. Reads only: it never moves money.
Prints the counts per stage, then one line per finding this run (first 50).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from webapp.clock import utcnow
from webapp.errors import ConfigError
from webapp.jobs.runner import JobContext
from webapp.services.reconcile import findings, sync

NAME = "reconcile"
SCHEDULE = "0 3 * * *"
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
PARAMS = [
    click.Option(["--since"], type=click.DateTime(DATE_FORMATS), help="Window start (UTC)."),
    click.Option(
        ["--until"],
        type=click.DateTime(DATE_FORMATS),
        help="Window end (UTC); a bare date includes that whole day.",
    ),
]


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The run's window: defaults, and a bare ``--until`` date read as the end of that day."""
    now = utcnow()
    if until is None:
        until = now
    elif until == datetime(until.year, until.month, until.day):
        until += timedelta(days=1) - timedelta(microseconds=1)
    since = since if since is not None else findings.default_since(now)
    if since > until:
        raise ConfigError(f"--since ({since:%Y-%m-%d %H:%M}) is after --until ({until:%Y-%m-%d})")
    return since, until


def run(ctx: JobContext, since: datetime | None = None, until: datetime | None = None) -> None:
    """Compare the window, store the findings, report them."""
    start, end = window(since, until)
    outcome = sync.reconcile(since=start, until=end, token=f"run:{ctx.run_id}")
    ctx.report("window", note=f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    ctx.report("compared", outcome.examined)
    ctx.report("api calls", {"Stripe": outcome.stripe_calls, "Mirakl": outcome.mirakl_calls})
    ctx.report(
        "findings",
        {**outcome.found, "new": outcome.new, "resolved": outcome.resolved},
        note="" if outcome.found else "none, everything agrees",
    )
    for finding in outcome.printed:
        ctx.lines.append(
            f"finding: {finding.finding_class} {finding.operation} "
            f"#{finding.operation_id or '-'} (Mirakl {finding.mirakl_id or '-'}, "
            f"Stripe {finding.stripe_id or '-'}): {finding.detail}"
        )
