"""Seeding the Stripe sandbox the way Stripe needs it for money to move.

The sandbox refuses what Stripe refuses: a transfer needs a destination whose ``transfers``
capability is active and, without ``source_transaction``, a platform balance that covers it.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from sandbox.stripe.control import StripeControl
from webapp.services.clients import get_stripe

PLATFORM_FUNDS = 10_000_000  # minor units: enough for any test's transfers


def sandbox() -> StripeControl:
    """The control API of the Stripe sandbox the current app talks to."""
    return StripeControl(current_app.config["STRIPE_API_BASE"])


def create_ready_account(idempotency_key: str, **params: Any) -> str:
    """A connected account created through the connector's gateway, as the connector creates
    them (``transfers`` requested), that finished onboarding (``transfers`` active)."""
    account = get_stripe().create_account(
        {
            "type": "express",
            "country": "FR",
            "capabilities": {"transfers": {"requested": True}},
            **params,
        },
        idempotency_key=idempotency_key,
    )
    sandbox().ready_account(account["id"])
    return account["id"]


def fund_platform(currency: str = "eur", amount: int = PLATFORM_FUNDS) -> None:
    """An available platform balance for transfers made without ``source_transaction``."""
    sandbox().set_balance("platform", currency, amount)
