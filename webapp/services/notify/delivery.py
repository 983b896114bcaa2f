"""What one POST to the operator's notification endpoint gave, read from its answer.

Shared by ``outbox`` (which sends and retries) and ``alerts`` (whose endpoint-down e-mail
quotes the last answer); it imports neither, so neither has to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

RESPONSE_BODY_LIMIT = 2000  # characters of the endpoint's answer kept for the alert e-mail


@dataclass(frozen=True)
class DeliveryResult:
    """What one POST to the operator's endpoint gave."""

    is_sent: bool
    error: str | None = None
    status_code: int | None = None
    response_body: str | None = None


def evaluate_response(status_code: int, body: str) -> DeliveryResult:
    """A 2xx answer is delivered; anything else is an error to retry."""
    if 200 <= status_code < 300:
        return DeliveryResult(True, status_code=status_code)
    return DeliveryResult(
        False,
        error=f"HTTP {status_code} from the notification endpoint",
        status_code=status_code,
        response_body=truncate_body(body),
    )


def truncate_body(body: str | None, limit: int = RESPONSE_BODY_LIMIT) -> str | None:
    """The endpoint's answer, cut to ``limit`` characters for storage and e-mail."""
    if body is None:
        return None
    return body if len(body) <= limit else body[:limit] + f"… ({len(body) - limit} more)"
