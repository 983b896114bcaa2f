"""Console columns: Stripe dashboard links, amounts, status badges, the environment banner.

Flask-Admin formatters take ``(view, context, model, name)`` and return text or ``Markup``;
every value is escaped by ``Markup.format``. Secrets never reach a page: the Stripe mode is
read from the key's prefix and only "test" or "live" leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from markupsafe import Markup

from webapp.models import AccountMapping, JobRun
from webapp.services.ledger.minor_units import format_amount

STRIPE_DASHBOARD = "https://dashboard.stripe.com"


def stripe_mode() -> str:
    """``test`` or ``live``, from the key's prefix (the key itself never leaves config)."""
    return "live" if "_live_" in current_app.config["STRIPE_CLIENT_SECRET"].reveal() else "test"


def environment() -> dict[str, str]:
    """What the banner shows: where this connector points."""
    return {
        "mirakl_host": current_app.config["MIRAKL_HOST_NAME"],
        "stripe_mode": stripe_mode(),
        "app_env": current_app.config["APP_ENV"],
    }


def stripe_url(object_id: str | None, account: str | None = None) -> str | None:
    """The Stripe dashboard page of an object (test-mode path with a test key)."""
    if not object_id:
        return None
    mode = "/test" if stripe_mode() == "test" else ""
    prefix, _, _ = object_id.partition("_")
    paths = {
        "acct": f"/connect/accounts/{object_id}",
        "tr": f"/connect/transfers/{object_id}",
        "ch": f"/payments/{object_id}",
        "py": f"/payments/{object_id}",
        "pi": f"/payments/{object_id}",
        "re": f"/refunds/{object_id}",
        "po": f"/{account}{mode}/payouts/{object_id}" if account else None,
    }
    path = paths.get(prefix)
    if path is None:
        return None
    return f"{STRIPE_DASHBOARD}{path}" if prefix == "po" else f"{STRIPE_DASHBOARD}{mode}{path}"


def onboarding_state(shop: AccountMapping) -> str:
    """onboarded, pending, disabled or ignored (the dashboard's shop buckets)."""
    if shop.ignored:
        return "ignored"
    if shop.payout_enabled and shop.payin_enabled:
        return "onboarded"
    return "disabled" if shop.disabled_reason else "pending"


# ---------------------------------------------------------------- column formatters


def _link(object_id: str | None, account: str | None = None) -> Markup | str:
    url = stripe_url(object_id, account)
    if not object_id:
        return ""
    if url is None:
        return Markup("<code>{}</code>").format(object_id)
    return Markup('<a href="{}" target="_blank" rel="noopener"><code>{}</code></a>').format(
        url, object_id
    )


def stripe_link(account_attr: str | None = None) -> Callable[..., Any]:
    """Formatter: the column's Stripe id as a link to the Stripe dashboard."""

    def formatter(view: Any, context: Any, model: Any, name: str) -> Markup | str:
        account = None
        if account_attr:
            mapping = getattr(model, account_attr, None)
            account = getattr(mapping, "stripe_account_id", None)
        return _link(getattr(model, name), account)

    return formatter


def amount_formatter(view: Any, context: Any, model: Any, name: str) -> str:
    return format_amount(getattr(model, name), model.currency)


BADGES = {"CREATED": "success", "PENDING": "info", "ON_HOLD": "warning", "FAILED": "danger"}


def status_formatter(view: Any, context: Any, model: Any, name: str) -> Markup:
    """The status as a badge; PENDING rows handed to a worker say "queued"."""
    status = getattr(model, name) or ""
    badge = next((b for key, b in BADGES.items() if status.endswith(key)), "secondary")
    html = Markup('<span class="badge badge-{}">{}</span>').format(badge, status)
    if status.endswith("PENDING") and getattr(model, "queued_at", None):
        html += Markup(' <span class="badge badge-light" title="queued {}">queued</span>').format(
            model.queued_at
        )
    return html


def shop_formatter(view: Any, context: Any, model: Any, name: str) -> str:
    mapping = getattr(model, "account_mapping", None)
    shop = mapping.mirakl_shop_id if mapping else getattr(model, "mirakl_shop_id", None)
    return "" if shop is None else str(shop)


def onboarding_formatter(view: Any, context: Any, model: AccountMapping, name: str) -> Markup:
    state = onboarding_state(model)
    badge = {"onboarded": "success", "disabled": "danger", "ignored": "secondary"}.get(
        state, "warning"
    )
    return Markup('<span class="badge badge-{}">{}</span>').format(badge, state)


def url_formatter(view: Any, context: Any, model: Any, name: str) -> Markup | str:
    url = getattr(model, name)
    if not url:
        return ""
    return Markup('<a href="{}" target="_blank" rel="noopener">open link</a>').format(url)


def duration_formatter(view: Any, context: Any, model: JobRun, name: str) -> str:
    return format_duration(model.started_at, model.finished_at)


def json_formatter(view: Any, context: Any, model: Any, name: str) -> Markup:
    raw = getattr(model, name) or ""
    try:
        raw = json.dumps(json.loads(raw), indent=2, sort_keys=True)
    except ValueError:
        pass
    return Markup("<pre class='mb-0'>{}</pre>").format(raw)


def format_duration(started: datetime | None, finished: datetime | None) -> str:
    """``12.3 s`` or ``4 min 5 s``; empty while running."""
    if not started or not finished:
        return ""
    seconds = (finished - started).total_seconds()
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"
