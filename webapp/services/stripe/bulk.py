"""Payments read in bulk: the charges and PaymentIntents of a pass's orders in a few list calls.

A transfer needs its charge's facts (status, captured, refunded, currency, the charge behind a
PaymentIntent). Read one by one that is a Stripe call per order beside the transfer itself; read
from the list endpoints, 100 objects per call, it is about a call per hundred orders.

One ``PaymentListing`` serves a whole evaluation pass. Stripe lists newest first while a pass
walks its orders oldest first, so a listing per chunk would page again and again through the
charges of the chunks still to come. Instead each listing is resumed where the previous chunk
left it, and what it passed over is remembered (a few fields, ``FRESH_FOR`` seconds) for the
chunks that come next. Objects the lists do not return (created outside the window, beyond
the listing budget, or remembered too long ago) are left to the caller's one-by-one retrieve,
so a bulk read can only save calls, never lose a payment.

Why remembered facts are fresh enough: a listed payment decides an order at most ``FRESH_FOR``
after Stripe described it. The one-by-one retrieve never promised more: its facts too are read
when the pass evaluates the order, and the transfer is sent later by its money job, after the
whole pass is evaluated and its rows queued; a refund made in between is seen by neither. What
keeps such a refund from costing the platform is the refund workflow, which reverses the
seller's transfer when Mirakl asks for the refund (docs/refunds.md); a charge refunded before
it is listed is listed as refunded and never paid out (docs/split.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from webapp.services.stripe.gateway import LIST_PAGE, StripeGateway

# A charge is made at checkout, before Mirakl creates the order it pays for.
CHARGE_LEAD = timedelta(days=1)  # how long before the order's creation its charge may be
CLOCK_SKEW = timedelta(hours=1)  # Mirakl's clock against Stripe's
MIN_BULK = 5  # payments wanted before a list call is worth it (below, one retrieve each)
FRESH_FOR = 300.0  # seconds a listed payment may still decide an order (see the docstring)
REMEMBERED = 50_000  # listed payments kept at most, a few fields each

# What deciding a transfer reads of a listed object (split/rules.py: payment_facts); the rest
# of each object is dropped at once so a long pass keeps its memory flat.
CHARGE_FIELDS = ("id", "status", "captured", "refunded", "currency")
INTENT_FIELDS = ("id", "status", "latest_charge")

Lister = Callable[[int, int], Iterator[dict[str, Any]]]


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


def _trimmed(item: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    kept = {key: item.get(key) for key in fields}
    if isinstance(kept.get("latest_charge"), dict):
        kept["latest_charge"] = kept["latest_charge"].get("id")
    return kept


@dataclass
class _Stream:
    """One newest-first listing of a creation window, paged only as far as it is read."""

    items: Iterator[dict[str, Any]]
    gte: int
    lte: int
    started: float
    exhausted: bool = False

    def covers(self, gte: int, lte: int, now: float) -> bool:
        """Whether this listing can answer for ``[gte, lte]`` with facts fresh enough."""
        return self.gte <= gte and lte <= self.lte and now - self.started < FRESH_FOR


@dataclass
class _Kind:
    """Charges or PaymentIntents: how to list them and what is kept of each."""

    lister: Lister
    fields: tuple[str, ...]
    stream: _Stream | None = None
    listed: int = 0  # objects read from the lists in this pass
    wanted: int = 0  # ids asked of the lists in this pass (the budget grows with it)


@dataclass
class PaymentListing:
    """The charges and PaymentIntents of one evaluation pass, listed as its chunks need them."""

    gateway: StripeGateway
    clock: Callable[[], float] = time.monotonic
    seen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.charges = _Kind(
            lambda gte, lte: self.gateway.list_charges(created_gte=gte, created_lte=lte),
            CHARGE_FIELDS,
        )
        self.intents = _Kind(
            lambda gte, lte: self.gateway.list_payment_intents(created_gte=gte, created_lte=lte),
            INTENT_FIELDS,
        )

    def read(
        self, payment_ids: Collection[str], created: Collection[datetime]
    ) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
        """Payment id → (the charge or PaymentIntent, the PaymentIntent's succeeded charge).

        ``created`` are the creation dates of the orders these payments paid for. A
        PaymentIntent whose charge was not found is left out (retrieved one by one).
        """
        wanted = set(payment_ids)
        if not wanted or not created:
            return {}
        now = self.clock()
        self._forget(now)
        gte, lte = window(created)
        may_list = len(wanted) >= MIN_BULK
        intent_ids = {p for p in wanted if p.startswith("pi_")}
        intents = self._find(self.intents, intent_ids, gte, lte, now, may_list)
        charge_of = {
            pid: intent["latest_charge"]
            for pid, intent in intents.items()
            if intent.get("status") == "succeeded" and isinstance(intent.get("latest_charge"), str)
        }
        charge_ids = (wanted - intent_ids) | set(charge_of.values())
        charges = self._find(self.charges, charge_ids, gte, lte, now, may_list)
        found: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
            pid: (charge, None) for pid, charge in charges.items() if pid in wanted
        }
        for pid, intent in intents.items():
            if pid not in charge_of:
                found[pid] = (intent, None)  # not succeeded: its charge does not decide anything
            elif charge_of[pid] in charges:
                found[pid] = (intent, charges[charge_of[pid]])
        return found

    def _find(
        self, kind: _Kind, ids: set[str], gte: int, lte: int, now: float, may_list: bool
    ) -> dict[str, dict[str, Any]]:
        """The objects of ``ids`` remembered or listed now; the rest are not in the window."""
        found = {i: self.seen[i][1] for i in ids if i in self.seen}
        left = ids - set(found)
        if not left or not may_list:
            return found
        if kind.stream is None or not kind.stream.covers(gte, lte, now):
            kind.stream = _Stream(kind.lister(gte, lte), gte, lte, now)
        stream = kind.stream
        kind.wanted += len(left)
        budget = listing_budget(kind.wanted)
        while left and not stream.exhausted and kind.listed < budget:
            item = next(stream.items, None)
            if item is None:
                stream.exhausted = True
                break
            kind.listed += 1
            kept = self._remember(item, kind.fields, now)
            if kept["id"] in left:
                left.discard(kept["id"])
                found[kept["id"]] = kept
        return found

    def _remember(self, item: dict[str, Any], fields: tuple[str, ...], now: float) -> dict:
        kept = _trimmed(item, fields)
        self.seen.pop(kept["id"], None)  # re-listed: moves to the fresh end
        self.seen[kept["id"]] = (now, kept)
        if len(self.seen) > REMEMBERED:
            del self.seen[next(iter(self.seen))]
        return kept

    def _forget(self, now: float) -> None:
        """Drop what was listed too long ago (kept in listing order, oldest first)."""
        while self.seen:
            oldest = next(iter(self.seen))
            if now - self.seen[oldest][0] < FRESH_FOR:
                return
            del self.seen[oldest]
