"""Idempotency keys: derived from the operation's identity, never random."""

from __future__ import annotations

KEY_PREFIX = "mirakl-connector"


def idempotency_key(operation: str, mirakl_id: str | int, attempt: int) -> str:
    """The Stripe Idempotency-Key of one attempt at one operation.

    ``operation`` names what is done (e.g. ``TRANSFER_PRODUCT_ORDER``, ``refund``,
    ``payout``, ``capture``); ``attempt`` grows only after Stripe definitively refused the
    previous attempt, so a crashed or retried attempt reuses the same key and Stripe
    answers with the object it already created instead of creating a second one.
    """
    return f"{KEY_PREFIX}:{operation}:{mirakl_id}:{attempt}"
