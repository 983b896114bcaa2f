"""Columns of the console's Reconciliation list (findings of ``connector reconcile``).

Each finding links to our row's detail page (its history) and to the Stripe object, and
says what the operator can do for its class. Nothing here moves money.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from markupsafe import Markup

from webapp.models import FindingClass, ReconciliationFinding
from webapp.services.ledger.minor_units import format_amount
from webapp.services.reconcile.rules import ACTIONS
from webapp.views.console_columns import stripe_url

# Our row's console list per finding operation (reversals are transfer rows).
ROW_VIEWS = {
    "transfer": "transfers",
    "reversal": "transfers",
    "refund": "refunds",
    "payout": "payouts",
}


def row_formatter(view: Any, context: Any, model: ReconciliationFinding, name: str) -> Any:
    """``transfer #12`` linked to the row's detail page (its history), or the operation."""
    endpoint = ROW_VIEWS.get(model.operation)
    if model.operation_id is None or endpoint is None:
        return model.operation
    url = url_for(f"{endpoint}.details_view", id=model.operation_id)
    return Markup('<a href="{}">{} #{}</a>').format(url, model.operation, model.operation_id)


def stripe_id_formatter(view: Any, context: Any, model: ReconciliationFinding, name: str) -> Any:
    if not model.stripe_id:
        return ""
    url = stripe_url(model.stripe_id, model.stripe_account_id)
    if url is None:
        return Markup("<code>{}</code>").format(model.stripe_id)
    return Markup('<a href="{}" target="_blank" rel="noopener"><code>{}</code></a>').format(
        url, model.stripe_id
    )


def our_amount_formatter(view: Any, context: Any, model: ReconciliationFinding, name: str) -> str:
    return format_amount(model.our_amount, model.currency)


def their_amount_formatter(view: Any, context: Any, model: ReconciliationFinding, name: str) -> str:
    return format_amount(model.their_amount, model.their_currency or model.currency)


def class_formatter(view: Any, context: Any, model: ReconciliationFinding, name: str) -> Markup:
    badge = "secondary" if model.resolved_at else "danger"
    return Markup('<span class="badge badge-{}">{}</span>').format(badge, model.finding_class)


def action_formatter(view: Any, context: Any, model: ReconciliationFinding, name: str) -> str:
    """What the operator can do for this class of finding."""
    if model.resolved_at:
        return "Nothing: the last run no longer saw it."
    try:
        return ACTIONS[FindingClass(model.finding_class)]
    except ValueError:
        return ""
