"""The RQ dashboard (rq-dashboard) under ``/console/rq``, behind the console's login.

Its own pages post with JavaScript and no CSRF token, so its blueprint is exempt from CSRF;
the session cookie is ``SameSite=Lax`` and every request must come from a logged-in operator.
"""

from __future__ import annotations

import rq_dashboard
from flask import Flask, redirect, request, url_for
from flask_login import current_user

from webapp.views.auth import csrf

URL_PREFIX = "/console/rq"


def _require_login():
    if request.blueprint == rq_dashboard.blueprint.name and not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.path))
    return None


def init_app(app: Flask) -> None:
    """Mount the RQ dashboard on this app's Redis, for logged-in operators only."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = [app.config["REDIS_URL"]]
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    app.before_request(_require_login)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    csrf.exempt(rq_dashboard.blueprint)
