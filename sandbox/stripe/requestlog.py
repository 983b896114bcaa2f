"""Journal of the Stripe API requests received (``GET /_sandbox/requests``).

Each entry: ``method``, ``path``, ``params`` (parsed body or query), ``stripe_account``,
``idempotency_key``, ``stripe_version``, ``user_agent``, ``client_user_agent``, ``status``
(``None`` when the connection was dropped), ``replayed`` (idempotent replay), ``fault``
(injected fault name or ``None``), ``request_id`` and ``at`` (epoch seconds).
Control requests (``/_sandbox/*``) are not journaled.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .util import is_control_path, random_id, read_params

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUESTS: list[dict[str, Any]] = []


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request a ``Request-Id`` and journal the Stripe API ones."""
    request_id = "req_" + random_id(14)
    request["request_id"] = request_id
    if is_control_path(request.path):
        return await handler(request)
    try:
        params: Any = await read_params(request)
    except Exception:  # an unreadable body is still journaled
        params = None
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "params": params,
        "stripe_account": request.headers.get("Stripe-Account"),
        "idempotency_key": request.headers.get("Idempotency-Key"),
        "stripe_version": request.headers.get("Stripe-Version"),
        "user_agent": request.headers.get("User-Agent"),
        "client_user_agent": request.headers.get("X-Stripe-Client-User-Agent"),
        "status": None,
        "replayed": False,
        "fault": None,
        "request_id": request_id,
        "at": time.time(),
    }
    REQUESTS.append(entry)
    response = await handler(request)
    fault = request.get("fault")
    entry["fault"] = fault
    entry["replayed"] = response.headers.get("Idempotent-Replayed") == "true"
    entry["status"] = None if fault in ("drop", "after_drop") else response.status
    if "executed_status" in request:
        entry["executed_status"] = request["executed_status"]
    response.headers["Request-Id"] = request_id
    return response


def matching(path_prefix: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
    """Journal entries, optionally filtered by path prefix and HTTP method."""
    return [
        entry
        for entry in REQUESTS
        if (path_prefix is None or entry["path"].startswith(path_prefix))
        and (method is None or entry["method"] == method.upper())
    ]


def clear() -> None:
    """Empty the journal."""
    REQUESTS.clear()
