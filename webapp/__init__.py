"""The Stripe Connector for Mirakl: application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dotenv import load_dotenv
from flask import Flask

from webapp.config import load_config, secret_values
from webapp.db_cli import db_cli
from webapp.extensions import db
from webapp.jobs.cli import connector_cli
from webapp.logs import configure_logging
from webapp.services.notify import mailer
from webapp.views import auth, register_views


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (and ``.env``), or from ``test_config`` alone.

    ``test_config`` is a complete set of environment-style variables, so tests never
    depend on the shell they run in.

    Raises:
        ConfigError: a setting is missing or malformed.
    """
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    if test_config is None:
        load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
        env: Mapping[str, str] = os.environ
    else:
        env = test_config
    app.config.update(load_config(env, instance_path=app.instance_path))
    configure_logging(app.config["LOG_FORMAT"], secret_values(app.config))

    db.init_app(app)
    mailer.init_app(app)

    auth.init_app(app)
    register_views(app)
    app.cli.add_command(connector_cli)
    app.cli.add_command(db_cli)
    return app
