"""Check the setup: ``connector doctor``, every hour (``SCHEDULE_DOCTOR`` overrides it).

One line per check (``ok``/``warn``/``FAIL`` and what to do); the result is stored for the
console's setup panel. The command runs outside the job runner: it must work when the
database or Redis is what is broken, and it exits non-zero when any check fails. A scheduled
run goes through the runner like any job (its own lease only).
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from webapp.jobs.runner import JobContext
from webapp.services.setup.checks import run_and_record
from webapp.services.setup.results import Level

NAME = "doctor"
SCHEDULE = "0 * * * *"
SEND_TEST_MAIL = click.Option(
    ["--send-test-mail"], is_flag=True, help="Also send a test e-mail to TECHNICAL_ALERT_EMAIL."
)
PARAMS = [SEND_TEST_MAIL]


def run(ctx: JobContext, send_test_mail: bool = False) -> None:
    """Run and store the checks; one summary line per check."""
    results, _ = run_and_record(ctx.trigger, send_test_mail=send_test_mail)
    ctx.lines.extend(result.line() for result in results)
    failed = sum(result.level is Level.FAIL for result in results)
    ctx.report("checks", {"run": len(results), "failed": failed})


@click.command(NAME, params=[SEND_TEST_MAIL])
@with_appcontext
def doctor_command(send_test_mail: bool) -> None:
    """Check the setup (configuration, database, Redis, Mirakl, Stripe, webhooks, mail)."""
    results, stored = run_and_record("cli", send_test_mail=send_test_mail)
    for result in results:
        click.echo(result.line())
    if not stored:
        click.echo("note: the result could not be stored for the console", err=True)
    failed = [result.name for result in results if result.level is Level.FAIL]
    if failed:
        click.echo(f"error: {len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


COMMAND = doctor_command
