"""HTTP client of the sandbox control API (``/_sandbox/``), for tests and scripts.

>>> control = MiraklControl("http://127.0.0.1:8081")
>>> control.reset()
>>> control.add_shops([make_shop(1)])          # from sandbox.mirakl.demo
>>> control.set_faults(sequence=[429, 200])
>>> control.requests(path="/api/shops")
"""

from __future__ import annotations

from typing import Any

import requests as http


class MiraklControl:
    """Wraps the control API of a running Mirakl sandbox at ``url`` (no trailing path)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = http.Session()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            method, f"{self.url}/_sandbox{path}", timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"Mirakl sandbox {method} {path} failed: {response.status_code} {response.text}"
            )
        return response.json() if response.content else None

    # --- lifecycle and settings --------------------------------------------------------------

    def reset(self) -> None:
        """Forget every item, the API key, S07 failures, the request log and the faults."""
        self._call("POST", "/reset")

    def set_api_key(self, key: str | None) -> None:
        """Require exactly ``key`` in ``Authorization`` (``None``: any non-empty value)."""
        self._call("POST", "/api_key", json={"key": key})

    def fail_s07(self, shop_ids: list[int | str]) -> None:
        """Make S07 answer a per-shop ``shop_error`` for these shops (``[]`` to stop)."""
        self._call("POST", "/s07_failures", json={"shop_ids": list(shop_ids)})

    def set_additional_fields(self, fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the custom fields AF01 answers (``make_additional_field`` builds one);
        :meth:`reset` restores the defaults, ``stripe-url`` and ``stripe-ignored``."""
        return self._call("POST", "/additional_fields", json=list(fields))["additional_fields"]

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Replace the fault settings, e.g. ``set_faults(sequence=[429, 500, 200])``.

        Keys: ``rate_limit_rate``, ``retry_after``, ``error_rate``, ``latency_ms``,
        ``drop_rate``, ``hang_s``, ``seed``, ``paths``, ``sequence``.
        """
        return self._call("POST", "/faults", json=settings)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._call("DELETE", "/faults")

    # --- items -------------------------------------------------------------------------------

    def _add(self, collection: str, items: list[dict[str, Any]]) -> list[str]:
        return self._call("POST", f"/{collection}", json=list(items))["ids"]

    def add_shops(self, shops: list[dict[str, Any]]) -> list[str]:
        """Add or replace shops (by ``shop_id``); returns their keys."""
        return self._add("shops", shops)

    def add_orders(self, orders: list[dict[str, Any]]) -> list[str]:
        """Add or replace product orders (by ``order_id``)."""
        return self._add("orders", orders)

    def add_service_orders(self, orders: list[dict[str, Any]]) -> list[str]:
        """Add or replace service orders (by ``id``)."""
        return self._add("service_orders", orders)

    def add_service_debits(self, debits: list[dict[str, Any]]) -> list[str]:
        """Add or replace service debits (by ``order_id``)."""
        return self._add("service_debits", debits)

    def add_invoices(self, invoices: list[dict[str, Any]]) -> list[str]:
        """Add or replace invoices (by ``invoice_id``)."""
        return self._add("invoices", invoices)

    def patch_order(self, order_id: str, **fields: Any) -> dict[str, Any]:
        """Merge fields into a product order, e.g. ``patch_order("o1", order_state="CLOSED")``."""
        return self._call("PATCH", f"/orders/{order_id}", json=fields)

    def patch_shop(self, shop_id: int | str, **fields: Any) -> dict[str, Any]:
        """Merge fields into a shop."""
        return self._call("PATCH", f"/shops/{shop_id}", json=fields)

    def patch_service_order(self, order_id: str, **fields: Any) -> dict[str, Any]:
        """Merge fields into a service order."""
        return self._call("PATCH", f"/service_orders/{order_id}", json=fields)

    def state(self) -> dict[str, list[dict[str, Any]]]:
        """Every collection as stored: ``{shops, orders, service_orders, service_debits,
        invoices}``."""
        return self._call("GET", "/state")

    # --- request log -------------------------------------------------------------------------

    def requests(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Logged API requests ``{method, path, query, body, status, at, fault}``, oldest first,
        optionally only those with this exact ``path`` and/or ``method``."""
        params = {key: value for key, value in (("path", path), ("method", method)) if value}
        return self._call("GET", "/requests", params=params)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._call("DELETE", "/requests")
