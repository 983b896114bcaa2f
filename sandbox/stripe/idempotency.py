"""``Idempotency-Key`` with Stripe's semantics, for every ``POST /v1/...``.

* Keys are scoped by ``Stripe-Account`` (the platform when absent).
* The first request with a key executes and its response (status + body, errors included)
  is saved - except what Stripe does not save because execution never began: ``409``
  answers, authentication/account errors (401/403) and parameter validation errors
  (``parameter_*`` codes); injected faults never reach this layer.
* Saved results expire after 24 hours of the sandbox clock (``POST /_sandbox/clock`` moves
  it): the same key then makes a new request, as Stripe prunes keys at least 24 hours old.
* The same key with the same method, path and parameters replays the saved response
  byte-for-byte with ``Idempotent-Replayed: true``.
* The same key with other parameters (or another path) answers ``400 idempotency_error``.
* The same key while the first request is still executing answers ``409 idempotency_error``
  (code ``idempotency_key_in_use``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from .state import STATE, IdempotencyRecord
from .util import json_response, read_params, request_scope, scope_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEY_TTL = 24 * 3600  # seconds a saved result is replayed (Stripe: pruned after >= 24 h)
UNSAVED_STATUSES = (401, 403, 409)  # execution never began

_in_flight: set[tuple[str, str]] = set()


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    error = {"type": "idempotency_error", "message": message}
    if code is not None:
        error["code"] = code
    return json_response({"error": error}, status)


def _is_saved(response: web.StreamResponse, body: bytes) -> bool:
    """Whether Stripe would save this answer: only once the endpoint began executing."""
    if response.status in UNSAVED_STATUSES:
        return False
    if response.status == 400:
        try:
            code = json.loads(body).get("error", {}).get("code") or ""
        except (ValueError, AttributeError):
            code = ""
        return not code.startswith("parameter_")
    return True


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply idempotency to ``POST /v1/...`` requests carrying an ``Idempotency-Key``."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)

    record_key = (scope_key(request_scope(request)), key)
    params = json.dumps(await read_params(request), sort_keys=True, default=str)

    if record_key in _in_flight:
        return _error(
            409,
            "There is currently another in-progress request using this Idempotent Key (that "
            "probably means you submitted twice, and the other request is still going "
            f"through): {key}. Please try again later.",
            code="idempotency_key_in_use",
        )

    record = STATE.idempotency.get(record_key)
    if record is not None and STATE.now() - record.created_at >= KEY_TTL:
        del STATE.idempotency[record_key]  # pruned: the key makes a new request
        record = None
    if record is not None:
        if (record.method, record.path, record.params) != (request.method, request.path, params):
            return _error(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        response = web.Response(
            body=record.body, status=record.status, content_type=record.content_type
        )
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Original-Request"] = record.request_id
        response.headers["Idempotency-Key"] = key
        return response

    _in_flight.add(record_key)
    try:
        response = await handler(request)
    finally:
        _in_flight.discard(record_key)
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and _is_saved(response, body):
        STATE.idempotency[record_key] = IdempotencyRecord(
            method=request.method,
            path=request.path,
            params=params,
            status=response.status,
            body=body,
            content_type=response.content_type,
            request_id=request.get("request_id", ""),
            created_at=STATE.now(),
        )
    response.headers["Idempotency-Key"] = key
    return response


def reset() -> None:
    """Forget in-flight markers (saved results live in ``STATE.idempotency``)."""
    _in_flight.clear()
