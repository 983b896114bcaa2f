"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi ...``."""

import sys

from webapp import create_app
from webapp.errors import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One line naming the bad variable, for the web process, the worker and the CLI alike.
    sys.exit(f"configuration error: {exc}")
