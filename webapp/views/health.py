"""``GET /healthz``: is the database (and Redis, and optionally Mirakl and Stripe) reachable."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from webapp.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Database check only for now; the answer never includes a secret or a URL."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is "down", with its kind only
        checks["database"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "down", checks=checks), 200 if healthy else 503
