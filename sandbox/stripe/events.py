"""Stripe event payloads and webhook signatures (pure Python, no server needed).

``sign_payload`` produces a real ``Stripe-Signature`` header value, so the result verifies with
``stripe.WebhookSignature.verify_header`` / ``stripe.Webhook.construct_event``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

API_VERSION = "2025-03-31.basil"
"""``api_version`` written into generated events."""


def make_event(
    type: str,
    obj: dict[str, Any],
    account: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A Stripe ``event`` wrapping ``obj`` (``data.object``).

    ``account`` is set for Connect events (events that happened on a connected account);
    it is omitted for platform events, like in Stripe.
    """
    event: dict[str, Any] = {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }
    if account is not None:
        event["account"] = account
    return event


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` header value for ``payload``: ``t=<ts>,v1=<hmac-sha256 hex>``.

    The signed message is ``b"<ts>." + payload`` keyed with the endpoint ``secret``
    (``whsec_...``), exactly as Stripe signs webhooks.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{ts}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"
