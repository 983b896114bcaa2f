"""Pacing of Stripe requests: one budget per second shared by every worker, through Redis.

Windows are 100 ms long, each allowing a tenth of ``STRIPE_MAX_RPS``, so bursts stay close to
the rate Stripe allows. Without Redis (CLI runs) a per-process token bucket is used.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from redis import Redis, RedisError

log = logging.getLogger(__name__)

WINDOW = 0.1  # seconds per budget window
KEY_PREFIX = "connector:stripe-rate:"


class LocalRateLimiter:
    """At most ``rate`` calls per second in this process (token bucket)."""

    def __init__(self, rate: float, burst: int = 5) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)


class RedisRateLimiter:
    """At most ``rate`` calls per second across all processes sharing ``redis``."""

    def __init__(self, redis: Redis, rate: float, fallback: Callable[[], None] | None = None):
        self.redis = redis
        self.per_window = max(1, math.floor(rate * WINDOW))
        self.fallback = fallback or LocalRateLimiter(rate)

    def __call__(self) -> None:
        while True:
            window = int(time.time() / WINDOW)
            key = f"{KEY_PREFIX}{window}"
            try:
                pipe = self.redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, 2)
                used = pipe.execute()[0]
            except RedisError:
                # Redis gone: pace this process alone rather than not at all.
                return self.fallback()
            if used <= self.per_window:
                return None
            time.sleep(max(0.0, (window + 1) * WINDOW - time.time()))
