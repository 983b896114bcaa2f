"""Pacing of Stripe requests: at most ``STRIPE_MAX_RPS`` a second, shared by every worker.

Each call reserves the next free slot (slots are ``1/rate`` apart; after a quiet spell a few
may be taken at once) and sleeps until it, once: no caller polls or retries, so waiting
threads never wake each other up only to sleep again. With Redis the slot is reserved by a
script on the Redis server, on its clock, so every process shares one schedule; without
Redis (CLI runs) this process keeps its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis import Redis, RedisError

log = logging.getLogger(__name__)

BURST = 5  # calls that may go at once after a quiet spell
KEY = "connector:stripe-rate:next-slot"

# Reserve the next slot: returns the microseconds to wait before using it (<= 0: now).
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now - tonumber(ARGV[2]))
redis.call('SET', KEYS[1], string.format('%d', slot + tonumber(ARGV[1])), 'PX', 60000)
return slot - now
"""


class LocalRateLimiter:
    """At most ``rate`` calls per second in this process."""

    def __init__(self, rate: float, burst: int = BURST) -> None:
        self.interval = 1.0 / rate
        self.allowance = self.interval * (max(1, burst) - 1)
        self.next_slot = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(self.next_slot, now - self.allowance)
            self.next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class RedisRateLimiter:
    """At most ``rate`` calls per second across all processes sharing ``redis``."""

    def __init__(
        self,
        redis: Redis,
        rate: float,
        burst: int = BURST,
        fallback: Callable[[], None] | None = None,
    ) -> None:
        self.interval_us = max(1, round(1_000_000 / rate))
        self.allowance_us = self.interval_us * (max(1, burst) - 1)
        self.reserve = redis.register_script(_RESERVE)
        self.fallback = fallback or LocalRateLimiter(rate, burst)

    def __call__(self) -> None:
        try:
            wait_us = int(self.reserve(keys=[KEY], args=[self.interval_us, self.allowance_us]))
        except RedisError:
            # Redis gone: pace this process alone rather than not at all.
            return self.fallback()
        if wait_us > 0:
            time.sleep(wait_us / 1_000_000)
        return None
