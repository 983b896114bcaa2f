"""``flask --app wsgi connector COMMAND``: one command per job, run to completion in-process."""

from __future__ import annotations

import sys
from types import ModuleType

import click
from flask.cli import AppGroup

from webapp.jobs.admin_cli import create_admin_command
from webapp.jobs.import_reference import import_reference_command
from webapp.jobs.register_webhooks import register_webhooks_command
from webapp.jobs.runner import run_job
from webapp.jobs.scheduler import scheduler_command
from webapp.jobs.table import job_modules
from webapp.jobs.worker import worker_command
from webapp.models import JobOutcome

connector_cli = AppGroup("connector", help="Run the connector's jobs and admin tasks.")


def _job_command(module: ModuleType) -> click.Command:
    def callback(**params: object) -> None:
        run, ctx = run_job(module.NAME, module.run, trigger="cli", inline=True, params=params)
        for line in ctx.lines:
            click.echo(line)
        if run.outcome == JobOutcome.FAILED:
            click.echo(f"error: {module.NAME} failed: {run.error}", err=True)
            sys.exit(1)

    doc = (module.__doc__ or "").strip().splitlines()
    return click.Command(
        module.NAME,
        callback=callback,
        params=list(getattr(module, "PARAMS", [])),
        help=doc[0] if doc else None,
    )


for _module in job_modules():
    # A job whose command must not go through the runner (doctor) brings its own.
    connector_cli.add_command(getattr(_module, "COMMAND", None) or _job_command(_module))
connector_cli.add_command(register_webhooks_command)
connector_cli.add_command(scheduler_command)
connector_cli.add_command(worker_command)
connector_cli.add_command(create_admin_command)
connector_cli.add_command(import_reference_command)
