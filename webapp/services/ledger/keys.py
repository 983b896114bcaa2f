"""Idempotency keys: derived from the operation's identity, never random."""

from __future__ import annotations

from datetime import UTC, datetime

KEY_PREFIX = "mirakl-connector"


def idempotency_key(operation: str, mirakl_id: str | int, attempt: int) -> str:
    """The Stripe Idempotency-Key of one attempt at one operation.

    ``operation`` names what is done (e.g. ``TRANSFER_PRODUCT_ORDER``, ``refund``,
    ``payout``, ``capture``); ``attempt`` grows only after Stripe definitively refused the
    previous attempt, so a crashed or retried attempt reuses the same key and Stripe
    answers with the object it already created instead of creating a second one.
    """
    return f"{KEY_PREFIX}:{operation}:{mirakl_id}:{attempt}"


def link_idempotency_key(kind: str, account_id: str, requested_at: datetime) -> str:
    """The Idempotency-Key of one Account Link or Login Link request.

    Links are single-use and expire within minutes, so each request for a link must make a
    new one: the key names the account and the instant (milliseconds) the link was asked
    for. stripe-python's network retries of that request reuse it, so a retried request
    never makes a second link, and a later request is never answered with a used one.
    """
    millis = int(requested_at.replace(tzinfo=requested_at.tzinfo or UTC).timestamp() * 1000)
    return f"{KEY_PREFIX}:{kind}:{account_id}:{millis}"
