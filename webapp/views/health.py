"""``GET /healthz``: database and Redis; with ``?deep=1`` also Mirakl (V01) and Stripe.

The answer names each check and its state only (never a URL, a key or an error text that
could carry one), 200 when every check passed, 503 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, jsonify, request
from sqlalchemy import text

from webapp.extensions import db
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.queueing.queues import get_redis

bp = Blueprint("health", __name__)


def _check(probe: Callable[[], object]) -> str:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure is "down", reported by kind only
        return f"down ({type(exc).__name__})"
    return "ok"


@bp.get("/healthz")
def healthz():
    checks = {
        "database": _check(lambda: db.session.execute(text("SELECT 1"))),
        "redis": _check(lambda: get_redis().ping()),
    }
    if request.args.get("deep") in ("1", "true", "yes"):
        checks["mirakl"] = _check(lambda: get_mirakl().get_version())
        checks["stripe"] = _check(lambda: get_stripe().platform_account_id())
    healthy = all(state == "ok" for state in checks.values())
    return jsonify(status="ok" if healthy else "down", checks=checks), 200 if healthy else 503
