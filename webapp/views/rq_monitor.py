"""The RQ dashboard (rq-dashboard) under ``/console/rq``, behind the console's login.

Its state-changing routes (requeue, delete, empty, compact) answer POST only and, like every
console form, need the console's CSRF token: our copy of its ``base.html``
(templates/rq_dashboard/base.html) puts the token in the page and static/js/rq_csrf.js sends
it with each request the dashboard's scripts make. A link or a form on another site can
therefore neither requeue nor delete anything.
"""

from __future__ import annotations

import redis
import rq_dashboard
from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user

URL_PREFIX = "/console/rq"
# rq-dashboard's endpoints that change Redis; ``requeue_all`` also answers GET upstream.
STATE_CHANGING_ENDPOINTS = frozenset(
    {"delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue"}
)


def _guard_dashboard():
    """Login first; then refuse a state change by anything but POST (405)."""
    if request.blueprint != rq_dashboard.blueprint.name:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.script_root + request.path))
    endpoint = (request.endpoint or "").rpartition(".")[2]
    if endpoint in STATE_CHANGING_ENDPOINTS and request.method != "POST":
        abort(405)
    return None


def init_app(app: Flask) -> None:
    """Mount the RQ dashboard on this app's Redis, for logged-in operators only."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = [app.config["REDIS_URL"]]
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    # rq-dashboard 0.9 sets ``app.redis_conn`` only when a page naming an instance is served:
    # until then its requeue and delete routes fail with a 500 in a fresh process.
    app.redis_conn = redis.Redis.from_url(app.config["REDIS_URL"])
    app.before_request(_guard_dashboard)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
