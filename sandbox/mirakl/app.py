"""Flask application factory of the Mirakl operator-API sandbox.

Every request outside ``/_sandbox/`` is an *API request*: it may receive an injected fault
(:mod:`.faults`), must carry an ``Authorization`` header (:func:`_check_auth`), and is recorded
in the request log with its final status. The control API under ``/_sandbox/`` is exempt.

Any path prefix in front of ``/api/`` is accepted (``http://host/some/prefix/api/orders``), so a
connector configured with a ``MIRAKL_HOST_NAME`` carrying a path works unchanged; the prefix is
treated as the WSGI script root, so ``Link`` URLs keep it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import additional_fields, admin_api, invoices, orders, payments, services, shops
from .common import (
    EXTENSION_KEY,
    ApiError,
    current_faults,
    current_store,
    error_response,
    json_response,
    now_iso_ms,
    try_json_body,
)
from .faults import DROP, FaultInjector, fault_response
from .state import Store

API_VERSION = "3.210.0"
CONTROL_PREFIX = "/_sandbox"

logger = logging.getLogger(__name__)


class _PrefixStripper:
    """WSGI middleware moving anything before ``/api/`` into ``SCRIPT_NAME``."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        index = path.find("/api/")
        if index > 0 and not path.startswith(CONTROL_PREFIX):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + path[:index]
            environ["PATH_INFO"] = path[index:]
        return self.wsgi_app(environ, start_response)


def create_app(*, api_key: str | None = None, demo: bool = False) -> Flask:
    """Build a sandbox app with empty state.

    :param api_key: require exactly this ``Authorization`` value (default: any non-empty one).
    :param demo: preload :func:`sandbox.mirakl.demo.demo_dataset`.
    """
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = Store()
    store.api_key = api_key
    app.extensions[EXTENSION_KEY] = {"store": store, "faults": FaultInjector()}
    if demo:
        from .demo import demo_dataset

        for collection, items in demo_dataset().items():
            store.upsert(collection, items)

    app.before_request(_before_api_request)
    app.after_request(_log_api_request)
    app.register_error_handler(ApiError, lambda exc: error_response(exc.status, exc.message))
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)

    app.add_url_rule("/api/version", "version", lambda: json_response({"version": API_VERSION}))
    for module in (shops, orders, payments, services, invoices, additional_fields, admin_api):
        app.register_blueprint(module.bp)

    app.wsgi_app = _PrefixStripper(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _is_api_request() -> bool:
    return not request.path.startswith(CONTROL_PREFIX + "/") and request.path != CONTROL_PREFIX


def _check_auth() -> Response | None:
    """401 unless ``Authorization`` is present (and equals the configured key, if any)."""
    given = request.headers.get("Authorization", "")
    expected = current_store().api_key
    if not given or (expected is not None and given != expected):
        return error_response(401, "Unauthorized")
    return None


def _drop_connection() -> Response:
    """Close the client socket without answering (logged with status ``None``), or, when the
    server gives no access to the socket, hang ``hang_s`` seconds then answer 504 (``"hang"``)."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        g.fault = DROP
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return Response(b"", status=504)
    g.fault = "hang"
    time.sleep(current_faults().hang_s)
    return Response(b"<html><body>Gateway Timeout</body></html>", 504, mimetype="text/html")


def _before_api_request() -> Response | None:
    if not _is_api_request():
        return None
    g.log_api = True
    g.fault = None
    faults = current_faults()
    decision = faults.decide(request.path)
    if decision.latency_s:
        time.sleep(decision.latency_s)
    if decision.action == DROP:
        return _drop_connection()
    if isinstance(decision.action, int):
        g.fault = decision.action
        return fault_response(decision.action, faults.retry_after)
    return _check_auth()


def _log_api_request(response: Response) -> Response:
    if not g.get("log_api"):
        return response
    fault = g.get("fault")
    entry = {
        "method": request.method,
        "path": request.path,
        "query": {key: request.args.getlist(key) for key in request.args},
        "body": try_json_body(),
        "status": None if fault == DROP else response.status_code,
        "at": now_iso_ms(),
        "fault": fault,
    }
    if request.script_root:
        entry["prefix"] = request.script_root
    current_store().log_request(entry)
    return response


def _http_error(exc: HTTPException) -> Response:
    return error_response(exc.code or 500, exc.name)


def _unexpected_error(exc: Exception) -> Response:
    logger.exception("Unexpected error in the Mirakl sandbox")
    return error_response(500, f"Sandbox error: {exc.__class__.__name__}: {exc}")
