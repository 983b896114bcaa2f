"""HTTP views: each module has its own blueprint ``bp``."""

from __future__ import annotations

from flask import Flask


def register_views(app: Flask) -> None:
    """Register every blueprint of the app."""
    from webapp.views import health

    app.register_blueprint(health.bp)
