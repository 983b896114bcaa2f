"""Stripe webhook events as the handlers see them: the answer a handler gives, and readers of
an event's object and ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webapp.errors import (
    WebhookPayloadInvalid,
)

MAX_ID_LENGTH = 255  # characters: Stripe ids are stored in String(255) columns


@dataclass
class WebhookAnswer:
    """What the endpoint answers, and what to run once the effect is committed."""

    status: int
    message: str
    after_commit: list[Callable[[], Any]] = field(default_factory=list)
    ignored: bool = False


def event_object(event: dict[str, Any]) -> dict[str, Any]:
    """``event.data.object``, or WebhookPayloadInvalid."""
    obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if not isinstance(obj, dict):
        raise WebhookPayloadInvalid("Invalid payload.", http_status=400)
    return obj


def is_stripe_id(value: Any) -> bool:
    """A usable Stripe id: printable ASCII that fits our columns (no NUL, at most 255)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isascii()
        and value.isprintable()
    )


def event_object_id(obj: dict[str, Any]) -> str:
    """``data.object.id``, or WebhookPayloadInvalid (400) when it is not a Stripe id."""
    value = obj.get("id")
    if not is_stripe_id(value):
        raise WebhookPayloadInvalid(
            "Invalid payload: data.object.id is not a Stripe id.", http_status=400
        )
    return value
