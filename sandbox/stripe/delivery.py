"""Events emitted by the sandbox and their (optional) webhook delivery.

The sandbox records the events it generates (``payout.failed``, ``payout.paid``,
``account.updated``) in :data:`state.STATE.events` (``GET /_sandbox/events``). Each event is
also POSTed, signed with :func:`sandbox.stripe.events.sign_payload`, in the background, to the
endpoints registered with ``POST /_sandbox/webhooks`` and to the enabled webhook endpoints
created through the API (``/v1/webhook_endpoints``, see :mod:`sandbox.stripe.webhook_endpoints`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from .events import make_event, sign_payload
from .state import STATE
from .webhook_endpoints import listening_endpoints

log = logging.getLogger("sandbox.stripe.delivery")


@dataclass
class Endpoint:
    """A webhook endpoint: events of ``types`` (all when empty) are POSTed to ``url``."""

    url: str
    secret: str
    types: list[str] = field(default_factory=list)
    connect: bool = True


ENDPOINTS: list[Endpoint] = []
DELIVERIES: list[dict[str, Any]] = []
_tasks: set[asyncio.Task[None]] = set()


def emit(type: str, obj: dict[str, Any], account: str | None = None) -> dict[str, Any]:
    """Record a new event and schedule its delivery; returns the event."""
    event = make_event(type, obj, account=account)
    STATE.events.append(event)
    for endpoint in _recipients(type, account):
        try:
            task = asyncio.get_running_loop().create_task(_deliver(endpoint, event))
        except RuntimeError:  # no running loop (unit use): nothing to deliver with
            continue
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    return event


def _recipients(type: str, account: str | None) -> list[Endpoint]:
    control = [
        endpoint
        for endpoint in ENDPOINTS
        if (not endpoint.types or type in endpoint.types) and (account is None or endpoint.connect)
    ]
    registered = [
        Endpoint(url=e.url, secret=e.secret, types=list(e.enabled_events), connect=e.connect)
        for e in listening_endpoints(type, account)
    ]
    return control + registered


async def _deliver(endpoint: Endpoint, event: dict[str, Any]) -> None:
    payload = json.dumps(event, indent=2, sort_keys=True).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign_payload(payload, endpoint.secret),
    }
    record: dict[str, Any] = {"event": event["id"], "type": event["type"], "url": endpoint.url}
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(endpoint.url, data=payload, headers=headers) as response:
                record["status"] = response.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        record["status"] = None
        record["error"] = str(exc)
        log.info("webhook %s to %s failed: %s", event["type"], endpoint.url, exc)
    DELIVERIES.append(record)


def endpoints_json() -> dict[str, Any]:
    """Registered endpoints (secrets included: this is a sandbox) and delivery attempts."""
    return {
        "endpoints": [asdict(endpoint) for endpoint in ENDPOINTS],
        "deliveries": list(DELIVERIES),
    }


def reset() -> None:
    """Forget endpoints and delivery attempts."""
    ENDPOINTS.clear()
    DELIVERIES.clear()
