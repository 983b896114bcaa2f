"""``flask --app wsgi connector COMMAND``: one command per job, run to completion in-process."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import click
from flask.cli import AppGroup

from webapp.jobs import JOB_MODULES
from webapp.jobs.runner import run_job
from webapp.models import JobOutcome

connector_cli = AppGroup("connector", help="Run the connector's jobs and admin tasks.")


def load_job(module_name: str) -> ModuleType:
    return importlib.import_module(f"webapp.jobs.{module_name}")


def _job_command(module: ModuleType) -> click.Command:
    def callback(**params: object) -> None:
        run, ctx = run_job(module.NAME, module.run, trigger="cli", inline=True, params=params)
        for line in ctx.lines:
            click.echo(line)
        if run.outcome == JobOutcome.FAILED.value:
            click.echo(f"error: {module.NAME} failed: {run.error}", err=True)
            sys.exit(1)

    doc = (module.__doc__ or "").strip().splitlines()
    return click.Command(
        module.NAME,
        callback=callback,
        params=list(getattr(module, "PARAMS", [])),
        help=doc[0] if doc else None,
    )


for _name in JOB_MODULES:
    connector_cli.add_command(_job_command(load_job(_name)))
