"""RQ queues and the Redis connection of the current app."""

from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

JOBS_QUEUE = "jobs"
MONEY_QUEUE = "money"
NOTIFICATIONS_QUEUE = "notifications"
ALL_QUEUES = (JOBS_QUEUE, MONEY_QUEUE, NOTIFICATIONS_QUEUE)


def get_redis() -> Redis:
    """The app's Redis connection (created once per app)."""
    ext = current_app.extensions
    if "redis" not in ext:
        ext["redis"] = Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10
        )
    return ext["redis"]


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis())
