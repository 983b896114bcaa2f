"""Public endpoints under ``/api/public``: Stripe webhooks (signed) and onboarding links."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, redirect, request

from webapp.errors import StripeError
from webapp.services.onboarding import links as onboarding_links
from webapp.services.webhooks import inbox as webhooks

log = logging.getLogger(__name__)

bp = Blueprint("public", __name__, url_prefix="/api/public")


def _webhook(endpoint: str, secret_setting: str) -> Response:
    answer = webhooks.receive(
        endpoint,
        request.get_data(cache=False),
        request.headers.get("Stripe-Signature"),
        current_app.config[secret_setting].reveal(),
    )
    return Response(answer.message, status=answer.status, mimetype="text/plain")


@bp.post("/webhook/sellers")
def sellers_webhook() -> Response:
    """Connect events (account.updated, payout.failed), signed with the sellers secret."""
    return _webhook("sellers", "STRIPE_SELLERS_WEBHOOK_SECRET")


@bp.post("/webhook")
def legacy_webhook() -> Response:
    """Deprecated alias of ``/webhook/sellers``, kept for existing Stripe settings."""
    return _webhook("sellers", "STRIPE_SELLERS_WEBHOOK_SECRET")


@bp.post("/webhook/operator")
def operator_webhook() -> Response:
    """Platform events (charge.succeeded, charge.updated), signed with the operator secret."""
    return _webhook("operator", "STRIPE_OPERATOR_WEBHOOK_SECRET")


@bp.get("/onboarding/refresh")
def onboarding_refresh() -> Response:
    """Stripe sends a seller here when their Account Link expired: redirect to a new one."""
    try:
        url = onboarding_links.refresh_link_for_token(request.args.get("token", ""))
    except StripeError as exc:
        log.warning("onboarding refresh: Stripe could not make a link: %s", exc)
        return Response(
            "Stripe could not create your link; please try again in a few minutes.",
            status=502,
            mimetype="text/plain",
        )
    if url is None:
        return Response("Incorrect token", status=400, mimetype="text/plain")
    return redirect(url, code=302)
