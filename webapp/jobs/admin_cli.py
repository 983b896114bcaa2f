"""``flask --app wsgi connector create-admin EMAIL``: add a console user (no default password)."""

from __future__ import annotations

import secrets
import sys

import click
from flask.cli import with_appcontext

from webapp.services.access.roles import ADMIN, ROLES
from webapp.services.access.users import create_user

MIN_PASSWORD_LENGTH = 12  # characters


@click.command("create-admin")
@click.argument("email")
@click.option("--generate", is_flag=True, help="Generate a strong password and print it once.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=ADMIN,
    show_default=True,
    help="viewer reads, operator also acts on money rows and jobs, admin also manages users.",
)
@with_appcontext
def create_admin_command(email: str, generate: bool, role: str) -> None:
    """Create a console user (admin unless --role); prompts for the password unless --generate."""
    if "@" not in email:
        click.echo(f"error: {email!r} is not an e-mail address", err=True)
        sys.exit(2)
    if generate:
        password = secrets.token_urlsafe(18)
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if len(password) < MIN_PASSWORD_LENGTH:
            click.echo(f"error: the password needs {MIN_PASSWORD_LENGTH} characters", err=True)
            sys.exit(2)
    try:
        create_user(email, password, role=role)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"created console user {email.strip().lower()} ({role})")
    if generate:
        click.echo(f"password (shown once): {password}")
