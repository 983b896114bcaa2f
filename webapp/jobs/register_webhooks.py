"""Create or update the two Stripe webhook endpoints: ``connector register-webhooks``.

Not scheduled. For ``SCHEME://BASE_HOST``: ``/api/public/webhook/sellers`` (Connect events
``account.updated``, ``payout.failed``) and ``/api/public/webhook/operator`` (``charge.succeeded``,
``charge.updated``). An endpoint already there is updated (missing events, disabled), never
duplicated. The signing secret of each endpoint it creates is printed here, once, with the
variable it belongs in: it is never logged or stored (Stripe shows it only at creation).
"""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from webapp.errors import ConnectorError
from webapp.services.clients import get_stripe
from webapp.services.setup.webhook_endpoints import PlannedChange, apply_plan, plan_for

VERBS = {"create": "created", "update": "updated"}


def describe(change: PlannedChange, *, dry_run: bool) -> str:
    """``sellers: created we_1 for https://…/sellers (…)`` or, dry, ``would create …``."""
    spec = change.spec
    if change.action == "none":
        return f"{spec.name}: up to date ({change.endpoint_id} at {spec.url})"
    verb = f"would {change.action}" if dry_run else VERBS[change.action]
    target = change.endpoint_id or "an endpoint"
    events = ", ".join(spec.events) + ("; Connect" if spec.connect else "")
    return f"{spec.name}: {verb} {target} for {spec.url} ({events}): {change.reason}"


@click.command("register-webhooks")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@with_appcontext
def register_webhooks_command(dry_run: bool) -> None:
    """Create or update the Stripe webhook endpoints for BASE_HOST; print new secrets."""
    gateway = get_stripe()
    try:
        plan = plan_for(gateway, current_app.config["PUBLIC_BASE_URL"])
        applied = [] if dry_run else apply_plan(gateway, plan)
    except ConnectorError as exc:
        click.echo(f"error: register-webhooks failed: {exc}", err=True)
        sys.exit(1)
    created = {a.change.spec.name: a for a in applied}
    for change in plan:
        done = created.get(change.spec.name)
        if done is not None and change.action == "create":
            change = PlannedChange(change.spec, "create", done.endpoint_id, reason=change.reason)
        click.echo(describe(change, dry_run=dry_run))
        if done is not None and done.secret:
            click.echo(f"  {change.spec.secret_setting}={done.secret}")
    if any(a.secret for a in applied):
        click.echo("Put each secret above in its variable and restart the web process.")
