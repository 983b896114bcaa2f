"""Payments read in bulk: the charges and PaymentIntents of a chunk of orders in a few list calls.

A transfer needs its charge's facts (status, captured, refunded, currency, the charge behind a
PaymentIntent). Read one by one that is a Stripe call per order beside the transfer itself; read
from the list endpoints, 100 objects per call, it is a call per chunk. Objects the lists do not
return (created outside the window, or beyond the listing budget) are left to the caller's
one-by-one retrieve, so a bulk read can only save calls, never lose a payment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from webapp.services.stripe.gateway import LIST_PAGE, StripeGateway

# A charge is made at checkout, before Mirakl creates the order it pays for.
CHARGE_LEAD = timedelta(days=1)  # how long before the order's creation its charge may be
CLOCK_SKEW = timedelta(hours=1)  # Mirakl's clock against Stripe's
MIN_BULK = 5  # payments wanted before a list call is worth it (below, one retrieve each)


def listing_budget(wanted: int) -> int:
    """Objects to list at most: fewer list calls than half the retrieves they replace."""
    return LIST_PAGE * max(1, wanted // 2)


def window(created: Collection[datetime]) -> tuple[int, int]:
    """Unix seconds bounding the charges of orders created at ``created`` (naive UTC)."""
    first, last = min(created), max(created)
    return (
        int((first - CHARGE_LEAD).replace(tzinfo=UTC).timestamp()),
        int((last + CLOCK_SKEW).replace(tzinfo=UTC).timestamp()),
    )


def _until_found(items: Iterator[dict[str, Any]], wanted: set[str]) -> Iterator[dict[str, Any]]:
    """The listed objects whose id is wanted; stops paging once all of them were seen."""
    left = set(wanted)
    for item in items:
        if item.get("id") in left:
            left.discard(item["id"])
            yield item
            if not left:
                return


def read_payments(
    gateway: StripeGateway, payment_ids: Collection[str], created: Collection[datetime]
) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """Payment id → (the charge or PaymentIntent, the PaymentIntent's succeeded charge).

    Reads the PaymentIntents, then the charges, created in the orders' window. A
    PaymentIntent whose charge was not listed is left out (retrieved one by one).
    """
    wanted = set(payment_ids)
    if len(wanted) < MIN_BULK or not created:
        return {}
    gte, lte = window(created)
    budget = listing_budget(len(wanted))
    intents: dict[str, dict[str, Any]] = {}
    intent_ids = {p for p in wanted if p.startswith("pi_")}
    if intent_ids:
        listed = gateway.list_payment_intents(created_gte=gte, created_lte=lte, max_items=budget)
        intents = {i["id"]: i for i in _until_found(listed, intent_ids)}
    charge_of = {
        pid: intent["latest_charge"]
        for pid, intent in intents.items()
        if intent.get("status") == "succeeded" and isinstance(intent.get("latest_charge"), str)
    }
    charge_ids = (wanted - intent_ids) | set(charge_of.values())
    charges: dict[str, dict[str, Any]] = {}
    if charge_ids:
        listed = gateway.list_charges(created_gte=gte, created_lte=lte, max_items=budget)
        charges = {c["id"]: c for c in _until_found(listed, charge_ids)}
    found: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
        pid: (charge, None) for pid, charge in charges.items() if pid in wanted
    }
    for pid, intent in intents.items():
        if pid not in charge_of:
            found[pid] = (intent, None)  # not succeeded: its charge does not decide anything
        elif charge_of[pid] in charges:
            found[pid] = (intent, charges[charge_of[pid]])
    return found
