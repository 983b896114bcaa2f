"""In-memory store of the Mirakl sandbox: catalogue items, settings and the request log.

Items are kept exactly as the control API received them (raw JSON dicts), keyed by their id
normalised to a string, in insertion order. Every access goes through :attr:`Store.lock`
(a re-entrant lock): handlers hold it while they read, mutate and serialise.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from typing import Any

from .field_items import default_fields

#: collection name -> the item field holding its id
COLLECTIONS: dict[str, str] = {
    "shops": "shop_id",
    "orders": "order_id",
    "service_orders": "id",
    "service_debits": "order_id",
    "invoices": "invoice_id",
}

#: product order waiting for the operator to confirm the customer debit (PA11/PA01)
WAITING_DEBIT_PAYMENT = "WAITING_DEBIT_PAYMENT"
#: product refund (``order_lines[].refunds[].state``) waiting for payment (PA12/PA02)
WAITING_REFUND_PAYMENT = "WAITING_REFUND_PAYMENT"
#: service refund (``refunds[].state``) states meaning "waiting for payment" (SPA12/SPA02)
SERVICE_REFUND_WAITING_STATES = frozenset({"WAITING", "WAITING_REFUND_PAYMENT"})


def id_key(value: Any) -> str | None:
    """Normalise an id (int or string) to the string used as a store key; ``None`` if absent."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


class Store:
    """Thread-safe in-memory state. Hold :attr:`lock` around any read-modify-write."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.api_key: str | None = None
        self.s07_failures: set[str] = set()
        self.request_log: list[dict[str, Any]] = []
        self.additional_fields: list[dict[str, Any]] = []  # AF01
        self._anonymous_ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        """Forget every item, setting and logged request; the default custom fields."""
        with self.lock:
            self.collections = {name: {} for name in COLLECTIONS}
            self.api_key = None
            self.s07_failures = set()
            self.request_log = []
            self.additional_fields = default_fields()

    # --- items -------------------------------------------------------------------------------

    def upsert(self, collection: str, items: list[dict[str, Any]]) -> list[str]:
        """Add or replace items by id; items without an id get a synthetic ``__anonymous_N`` key.

        Returns the keys used, in order.
        """
        id_field = COLLECTIONS[collection]
        keys: list[str] = []
        with self.lock:
            target = self.collections[collection]
            for item in items:
                key = id_key(item.get(id_field)) or f"__anonymous_{next(self._anonymous_ids)}"
                target[key] = copy.deepcopy(item)
                keys.append(key)
        return keys

    def get(self, collection: str, key: Any) -> dict[str, Any] | None:
        """The live stored item (caller holds the lock if it mutates it), or ``None``."""
        normalised = id_key(key)
        if normalised is None:
            return None
        return self.collections[collection].get(normalised)

    def values(self, collection: str) -> list[dict[str, Any]]:
        """Live stored items of a collection, in insertion order (caller holds the lock)."""
        return list(self.collections[collection].values())

    def patch(self, collection: str, key: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Shallow-merge ``fields`` into a stored item; returns a copy, or ``None`` if unknown."""
        with self.lock:
            item = self.get(collection, key)
            if item is None:
                return None
            item.update(copy.deepcopy(fields))
            return copy.deepcopy(item)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Deep copy of every collection as lists (the ``/_sandbox/state`` payload)."""
        with self.lock:
            return {
                name: copy.deepcopy(list(items.values()))
                for name, items in self.collections.items()
            }

    # --- request log -------------------------------------------------------------------------

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one received API request to the log."""
        with self.lock:
            self.request_log.append(entry)

    def logged_requests(
        self, path: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        """Logged requests, optionally only those with this exact path and/or method."""
        with self.lock:
            return [
                copy.deepcopy(entry)
                for entry in self.request_log
                if (path is None or entry["path"] == path)
                and (method is None or entry["method"] == method.upper())
            ]

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self.lock:
            self.request_log = []
