"""The aiohttp application: our routes first, then localstripe's, behind our middlewares.

Middlewares, outermost first::

    request log -> persistence -> faults -> errors -> auth (localstripe) + Stripe-Account
    -> idempotency -> latency -> errors -> handler

so injected faults bypass idempotency (never saved) while "after" faults wrap an execution
whose result is saved, and every error reaches the idempotency layer as a response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from localstripe import server as ls_server
from localstripe.errors import UserError
from localstripe.resources import BalanceTransaction

from . import (
    accounts,
    control_api,
    pages,
    payments,
    payouts,
    state,
    transfers,
    webhook_endpoints,
)
from .accounts import account_exists, is_rejected_key
from .faults import faults_middleware, latency_middleware
from .idempotency import idempotency_middleware
from .requestlog import request_log_middleware
from .util import StripeError, is_control_path, json_response, request_scope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("sandbox.stripe")

OUR_ROUTES: list[tuple[str, str, Any]] = [
    *accounts.ROUTES,
    *transfers.ROUTES,
    *payouts.ROUTES,
    *payments.ROUTES,
    *webhook_endpoints.ROUTES,
    *control_api.ROUTES,
    *pages.ROUTES,
]
REPLACED_PREFIXES = ("/v1/payouts",)
"""localstripe routes under these paths are dropped entirely (ours replace them)."""


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into Stripe-shaped JSON responses."""
    try:
        return await handler(request)
    except UserError as exc:
        return exc.to_response()
    except web.HTTPException as exc:
        if exc.status in (404, 405) and not is_control_path(request.path):
            return StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            ).to_response()
        raise
    except Exception:  # a sandbox bug must still answer like Stripe
        log.exception("error handling %s %s", request.method, request.path)
        return json_response(
            {"error": {"type": "api_error", "message": "Internal sandbox error."}}, 500
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """localstripe's API key check (any ``sk_...`` key), then the ``Stripe-Account`` check."""
    if is_control_path(request.path):
        return await handler(request)
    key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if is_rejected_key(key):
        raise StripeError(
            401,
            f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}",
            type="invalid_request_error",
        )
    return await ls_server.auth_middleware(request, _account_header_check(handler))


def _account_header_check(handler: Handler) -> Handler:
    async def check(request: web.Request) -> web.StreamResponse:
        scope = request_scope(request)
        if scope is not None and not account_exists(scope):
            raise StripeError(
                403,
                "The provided key 'sk_test_********' does not have access to account "
                f"'{scope}' (or that account does not exist). Application access may have "
                "been revoked.",
                code="account_invalid",
            )
        return await handler(request)

    return check


@web.middleware
async def persistence_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Save the state file (if any) after every mutating request."""
    try:
        return await handler(request)
    finally:
        if request.method in ("POST", "DELETE"):
            state.save()


def create_app() -> web.Application:
    """Build the application (one per process: the stores are module globals)."""
    app = web.Application(
        middlewares=[
            request_log_middleware,
            persistence_middleware,
            faults_middleware,
            error_middleware,
            auth_middleware,
            idempotency_middleware,
            latency_middleware,
            error_middleware,
        ]
    )
    ours = set()
    for method, path, handler in OUR_ROUTES:
        app.router.add_route(method, path, handler)
        ours.add((method, path))
    for path in ("/v1/balance_transactions", "/v1/balance_transactions/{id}"):
        # stripe-python's name for localstripe's /v1/balance/history routes
        handler = (ls_server.api_retrieve if "{id}" in path else ls_server.api_list_all)(
            BalanceTransaction, path
        )
        app.router.add_get(path, _as_async(handler), allow_head=False)
    for route in ls_server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if (route.method, path) in ours or path.startswith(REPLACED_PREFIXES):
            continue
        app.router.add_route(route.method, path, route.handler)
    return app


def _as_async(handler: Callable[[web.Request], web.StreamResponse]) -> Handler:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        return handler(request)

    return wrapper


def run(
    host: str = "127.0.0.1",
    port: int = 8421,
    state_file: str | None = None,
    access_log: bool = False,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM)."""
    state.configure_persistence(state_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    web.run_app(
        create_app(),
        host=host,
        port=port,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        print=lambda message: log.info("%s", message.strip()),
    )
