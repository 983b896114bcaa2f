"""CORS on ``/api/*``, as the reference's nelmio configuration (reference §8.1).

Origins matching the ``CORS_ALLOW_ORIGIN`` regular expression (case-insensitive, found
anywhere in the Origin, as PHP's ``preg_match``) may call the API from a browser; the
``Link`` header is exposed and preflight answers are cached for an hour.
"""

from __future__ import annotations

import re

from flask import Flask
from flask_cors import CORS

ALLOW_METHODS = ["GET", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
# The reference's Content-Type and Authorization, plus the API's own X-AUTH-TOKEN.
ALLOW_HEADERS = ["Content-Type", "Authorization", "X-AUTH-TOKEN"]
EXPOSE_HEADERS = ["Link"]
MAX_AGE = 3600  # seconds a browser may cache a preflight answer


def origin_pattern(raw: str) -> re.Pattern[str]:
    """``CORS_ALLOW_ORIGIN`` as a pattern that flask-cors' anchored ``match`` uses like
    PHP's ``preg_match`` (a search): a leading lazy ``.*?`` lets it match anywhere."""
    return re.compile(r".*?(?:" + raw + ")", re.IGNORECASE)


def init_app(app: Flask) -> None:
    """Answer preflights and add the CORS headers on ``/api/*`` for allowed origins."""
    CORS(
        app,
        resources={r"/api/*": {"origins": [origin_pattern(app.config["CORS_ALLOW_ORIGIN"])]}},
        methods=ALLOW_METHODS,
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        max_age=MAX_AGE,
        vary_header=True,
    )
