"""The app's one Mirakl client and one Stripe gateway, built lazily from its config."""

from __future__ import annotations

import os

from flask import current_app
from redis import RedisError

from webapp.services.mirakl.client import MiraklClient
from webapp.services.queueing.queues import get_redis
from webapp.services.stripe.gateway import StripeGateway
from webapp.services.stripe.pacing import LocalRateLimiter, RedisRateLimiter


def get_mirakl() -> MiraklClient:
    """The Mirakl client of the current app (shared by its threads)."""
    ext = current_app.extensions
    if "mirakl_client" not in ext:
        ext["mirakl_client"] = MiraklClient.from_config(current_app.config)
    return ext["mirakl_client"]


def get_stripe() -> StripeGateway:
    """The Stripe gateway of the current app (shared by its threads)."""
    ext = current_app.extensions
    if "stripe_gateway" not in ext:
        cfg = current_app.config
        ext["stripe_gateway"] = StripeGateway(
            cfg["STRIPE_CLIENT_SECRET"].reveal(),
            api_base=cfg["STRIPE_API_BASE"],
            plugin_version=plugin_version(),
            timeout=cfg["STRIPE_TIMEOUT"],
            max_network_retries=cfg["STRIPE_MAX_NETWORK_RETRIES"],
            throttle=_throttle(cfg["STRIPE_MAX_RPS"]),
        )
    return ext["stripe_gateway"]


def _throttle(rate: float):
    """Shared pacing through Redis when it answers; otherwise pace this process alone."""
    try:
        redis = get_redis()
        redis.ping()
    except RedisError:
        return LocalRateLimiter(rate)
    return RedisRateLimiter(redis, rate)


def plugin_version() -> str:
    """The connector version from the VERSION file (``1.0`` when absent), as the reference."""
    path = os.path.join(os.path.dirname(current_app.root_path), "VERSION")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or "1.0"
    except OSError:
        return "1.0"
