"""``connector import-reference --from URL [--dry-run]``: take over a PHP connector's database.

Not scheduled: run once at the switch-over (docs/switch-over.md), after the PHP cron and
workers are stopped. It needs no Redis and takes no job's lease (only its own), so it can
run before the Procfile is started.
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from webapp.errors import ConnectorError
from webapp.services.takeover.importer import import_reference

NAME = "import-reference"


@click.command(NAME)
@click.option(
    "--from",
    "from_url",
    required=True,
    metavar="URL",
    help="The PHP connector's database, e.g. postgresql://user:password@host:5432/connector",
)
@click.option("--dry-run", is_flag=True, help="Print counts per table and every conflict only.")
@with_appcontext
def import_reference_command(from_url: str, dry_run: bool) -> None:
    """Import a PHP connector 4.1.1 database: mappings, checkpoints, money rows."""
    try:
        report = import_reference(from_url, dry_run=dry_run)
    except ConnectorError as exc:
        click.echo(f"error: import-reference: {exc}", err=True)
        sys.exit(1)
    for line in report.lines():
        click.echo(line)
    if dry_run:
        for conflict in report.conflicts:
            click.echo(f"conflict: {conflict}")
        click.echo("dry run: nothing written")
    if report.conflicts:
        more = len(report.conflicts) - 1
        tail = f" (and {more} more conflicts: --dry-run lists them)" if more else ""
        click.echo(
            f"error: import-reference: {report.conflicts[0]}{tail}; nothing imported", err=True
        )
        sys.exit(1)
    if report.written:
        click.echo("imported: the connector now holds the PHP connector's data")
