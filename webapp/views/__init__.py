"""HTTP views: each module has its own blueprint ``bp``."""

from __future__ import annotations

from flask import Flask

from webapp.views import api, auth, console, cors, health, public, rq_monitor


def register_views(app: Flask) -> None:
    """Register every blueprint of the app."""
    cors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    # Machine endpoints authenticate by signature or token, not by a console session.
    for blueprint in (public.bp, api.bp, health.bp):
        auth.csrf.exempt(blueprint)
    console.init_app(app)
    rq_monitor.init_app(app)
