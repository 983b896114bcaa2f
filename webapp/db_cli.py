"""``flask --app wsgi db …``: Flask-Migrate, loaded only where migrations are used.

Importing Flask-Migrate imports alembic, about 90 ms of CPU that no job run, worker or
request needs; the ``db`` group loads it when one of its commands is asked for.
"""

from __future__ import annotations

import os

import click
from flask import Flask, g
from flask.cli import ScriptInfo, with_appcontext

from webapp.extensions import db

MIGRATIONS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations"
)


def init_migrations(app: Flask) -> None:
    """Bind Flask-Migrate to ``app`` (once), for ``flask db`` and ``flask_migrate.upgrade()``."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)


class MigrationsGroup(click.Group):
    """Flask-Migrate's ``db`` commands, resolved on first use."""

    def _commands(self, ctx: click.Context) -> click.Group:
        init_migrations(ctx.ensure_object(ScriptInfo).load_app())
        from flask_migrate.cli import db as group

        return group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._commands(ctx).get_command(ctx, cmd_name)


@click.group("db", cls=MigrationsGroup)
@click.option("-d", "--directory", default=None, help="Migration script directory")
@click.option("-x", "--x-arg", multiple=True, help="Additional arguments for env.py")
@with_appcontext
def db_cli(directory: str | None, x_arg: tuple[str, ...]) -> None:
    """Perform database migrations (Flask-Migrate)."""
    # What Flask-Migrate's own ``db`` group does; its commands read these.
    g.directory = directory
    g.x_arg = x_arg
