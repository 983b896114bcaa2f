"""Fault injection for Stripe API requests (never for ``/_sandbox/*``).

Configured with ``POST /_sandbox/faults``; each matching request draws, in this order:

* ``drop_rate``: close the connection without answering (not executed);
* ``rate_limit_rate``: ``429`` rate limit error (not executed);
* ``error_rate``: ``500 api_error`` (not executed);
* ``after_rate``: execute (the idempotent result is saved), then answer ``500`` or drop the
  connection (``after_action``: ``error`` | ``drop`` | ``random``) - an unknown outcome.

``latency_ms`` delays every matching request (while holding its idempotency key, so a
concurrent duplicate gets a ``409``). ``max_faults`` bounds the number of injected faults.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .util import StripeError, is_control_path, json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

AFTER_ACTIONS = ("error", "drop", "random")
RATE_FIELDS = ("error_rate", "after_rate", "rate_limit_rate", "drop_rate")


@dataclass
class FaultConfig:
    """Current fault settings (all zero: no faults)."""

    error_rate: float = 0.0
    after_rate: float = 0.0
    after_action: str = "error"
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: int = 0
    seed: int | None = None
    paths: list[str] | None = None
    methods: list[str] | None = None
    max_faults: int | None = None
    injected: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def as_json(self) -> dict[str, Any]:
        """Settings as given, plus the number of faults injected so far."""
        return {
            "error_rate": self.error_rate,
            "after_rate": self.after_rate,
            "after_action": self.after_action,
            "rate_limit_rate": self.rate_limit_rate,
            "drop_rate": self.drop_rate,
            "latency_ms": self.latency_ms,
            "seed": self.seed,
            "paths": self.paths,
            "methods": self.methods,
            "max_faults": self.max_faults,
            "injected": self.injected,
        }

    def applies_to(self, request: web.Request) -> bool:
        """Whether ``request`` is subject to these faults."""
        if is_control_path(request.path):
            return False
        if self.paths is not None and not any(request.path.startswith(p) for p in self.paths):
            return False
        return self.methods is None or request.method in self.methods

    def draw(self, rate: float) -> bool:
        """Decide one fault of probability ``rate`` (respecting ``max_faults``)."""
        if rate <= 0 or (self.max_faults is not None and self.injected >= self.max_faults):
            return False
        if self.rng.random() < rate:
            self.injected += 1
            return True
        return False


CONFIG = FaultConfig()


def configure(data: dict[str, Any]) -> FaultConfig:
    """Replace the fault settings (``POST /_sandbox/faults``)."""
    global CONFIG
    allowed = {*RATE_FIELDS, "after_action", "latency_ms", "seed", "paths", "methods", "max_faults"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise StripeError(400, f"Unknown fault setting(s): {', '.join(unknown)}")
    config = FaultConfig()
    try:
        for name in RATE_FIELDS:
            value = float(data.get(name, 0) or 0)
            if not 0 <= value <= 1:
                raise StripeError(400, f"{name} must be between 0 and 1", param=name)
            setattr(config, name, value)
        config.latency_ms = int(data.get("latency_ms", 0) or 0)
        if data.get("max_faults") is not None:
            config.max_faults = int(data["max_faults"])
    except (TypeError, ValueError) as exc:
        raise StripeError(400, f"Invalid fault setting: {exc}") from None
    config.after_action = data.get("after_action", "error")
    if config.after_action not in AFTER_ACTIONS:
        raise StripeError(400, f"after_action must be one of {', '.join(AFTER_ACTIONS)}")
    config.seed = data.get("seed")
    config.rng = random.Random(config.seed)
    config.paths = _string_list(data.get("paths"))
    methods = _string_list(data.get("methods"))
    config.methods = [m.upper() for m in methods] if methods is not None else None
    CONFIG = config
    return config


def _string_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def clear() -> None:
    """No more faults (``DELETE /_sandbox/faults``)."""
    global CONFIG
    CONFIG = FaultConfig()


def _api_error() -> web.Response:
    return json_response(
        {
            "error": {
                "type": "api_error",
                "message": "An unknown error occurred (injected by the Stripe sandbox).",
            }
        },
        500,
    )


def _rate_limited() -> web.Response:
    return json_response(
        {
            "error": {
                "type": "rate_limit_error",
                "code": "rate_limit",
                "message": "Request rate limit exceeded. You can learn more about rate limits "
                "here https://stripe.com/docs/rate-limits.",
            }
        },
        429,
    )


def _drop(request: web.Request) -> web.Response:
    """Close the connection; aiohttp then fails to write the returned response, silently."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


def _mark(request: web.Request, fault: str) -> None:
    request["fault"] = fault


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inject the configured faults around the (idempotent) execution of the request."""
    config = CONFIG
    if not config.applies_to(request):
        return await handler(request)
    if config.draw(config.drop_rate):
        _mark(request, "drop")
        return _drop(request)
    if config.draw(config.rate_limit_rate):
        _mark(request, "rate_limit")
        return _rate_limited()
    if config.draw(config.error_rate):
        _mark(request, "error")
        return _api_error()
    after = config.draw(config.after_rate)
    response = await handler(request)
    if not after:
        return response
    action = config.after_action
    if action == "random":
        action = config.rng.choice(("error", "drop"))
    _mark(request, f"after_{action}")
    request["executed_status"] = response.status
    return _drop(request) if action == "drop" else _api_error()


@web.middleware
async def latency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Delay matching requests by ``latency_ms`` before executing them."""
    config = CONFIG
    if config.latency_ms > 0 and config.applies_to(request):
        await asyncio.sleep(config.latency_ms / 1000)
    return await handler(request)
