"""The only code that talks to Mirakl: one method per operator endpoint we use.

Inside: both pagination styles (offset with ``max=100`` following ``Link rel="next"`` or
``total_count``; seek with ``limit`` and ``page_token``), lazily iterated so a large backlog
is never held in memory; id filters batched by 100; HTTP 429 honoured with ``Retry-After``;
5xx, timeouts and connection errors retried with capped exponential backoff and jitter
(writes only when the request cannot have been applied). Items come back as frozen
dataclasses, or as ``BadItem`` when one item is malformed, so a run never dies of one item.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests

from webapp.errors import (
    MiraklBadResponse,
    MiraklDataError,
    MiraklError,
    MiraklRejected,
    MiraklUnavailable,
)
from webapp.services.http import proxied_session
from webapp.services.mirakl_types import (
    BadItem,
    Invoice,
    PendingDebit,
    PendingRefund,
    ProductOrder,
    ServiceDebit,
    ServiceOrder,
    Shop,
    ShopUpdateResult,
    guess_id,
    parse_invoice,
    parse_pending_debit,
    parse_pending_refund_order,
    parse_product_order,
    parse_service_debit,
    parse_service_order,
    parse_service_pending_refund,
    parse_shop,
    parse_shop_return,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # items per page; Mirakl's maximum
ID_BATCH = 100  # ids per filter; Mirakl answers 400 beyond
CONNECT_TIMEOUT = 5.0  # seconds
MAX_RETRY_AFTER = 120.0  # seconds we accept to wait on one 429
TAX_SUFFIX = "_TAX"

T = TypeVar("T")


def batches(items: Sequence[T], size: int = ID_BATCH) -> Iterator[list[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def strip_tax_suffix(mirakl_id: str) -> str:
    """``ORDER-1-A_TAX`` → ``ORDER-1-A``: tax transfers are keyed on their order's id."""
    return mirakl_id[: -len(TAX_SUFFIX)] if mirakl_id.endswith(TAX_SUFFIX) else mirakl_id


def _jsonable(value: Any) -> Any:
    """Mirakl wants amounts as JSON numbers; Decimals become floats only here, at the edge."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class MiraklClient:
    """A Mirakl operator API client bound to one marketplace."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        page_size: int = PAGE_SIZE,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.page_size = page_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.calls = 0  # HTTP requests sent, for the benchmark and the job summaries
        self.session = proxied_session()
        self.session.max_redirects = 5

    def __repr__(self) -> str:
        return f"MiraklClient({self.base_url!r})"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> MiraklClient:
        return cls(
            cfg["MIRAKL_HOST_NAME"],
            cfg["MIRAKL_API_KEY"].reveal(),
            timeout=cfg["MIRAKL_TIMEOUT"],
            max_retries=cfg["MIRAKL_MAX_RETRIES"],
            backoff_base=cfg["MIRAKL_BACKOFF_BASE"],
        )

    # ------------------------------------------------------------ transport

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def _retry_after(response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After", "").strip()
        try:
            return min(MAX_RETRY_AFTER, max(0.0, float(value)))
        except ValueError:
            return None

    @staticmethod
    def _message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and body.get("message"):
            return str(body["message"])[:500]
        text = response.text.strip()
        if not text or text.lstrip().startswith("<"):
            return response.reason or f"HTTP {response.status_code}"
        return text[:500]

    def _send(
        self,
        code: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        is_idempotent: bool = True,
    ) -> requests.Response:
        """Send one request with retries; return a 2xx response or raise a ``MiraklError``."""
        path = urlsplit(url).path
        headers = {"Authorization": self._api_key, "Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            try:
                self.calls += 1
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=None if body is None else _jsonable(body),
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, self.timeout),
                )
            except requests.RequestException as exc:
                # A write may have been applied unless the connection never opened.
                may_retry = is_idempotent or isinstance(exc, requests.ConnectTimeout)
                if not may_retry or attempt > self.max_retries:
                    raise MiraklUnavailable(
                        f"{code} {method} {path}: {type(exc).__name__} after {attempt} tries",
                        code=code,
                    ) from None
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status == 429:
                if attempt > self.max_retries * 2:
                    raise MiraklUnavailable(
                        f"{code} {method} {path}: still rate limited after {attempt} tries",
                        http_status=429,
                        code=code,
                    )
                wait = self._retry_after(response)
                log.info("mirakl %s: rate limited, waiting %.1fs", code, wait or 0)
                self.sleep(self._backoff(attempt) if wait is None else wait)
                continue
            if status >= 500:
                if is_idempotent and attempt <= self.max_retries:
                    self.sleep(self._backoff(attempt))
                    continue
                raise MiraklUnavailable(
                    f"{code} {method} {path}: HTTP {status} {self._message(response)}",
                    http_status=status,
                    code=code,
                )
            if status >= 400:
                raise MiraklRejected(
                    f"{code} {method} {path}: HTTP {status} {self._message(response)}",
                    http_status=status,
                    code=code,
                )
            return response

    def _json(self, code: str, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise MiraklBadResponse(
                f"{code}: expected JSON, got {response.headers.get('Content-Type', 'no type')}"
                f" ({len(response.content)} bytes)",
                http_status=response.status_code,
                code=code,
            ) from None

    def _get(self, code: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(code, self._send(code, "GET", self.base_url + path, params=params))

    def _put(self, code: str, path: str, body: Any) -> requests.Response:
        return self._send(code, "PUT", self.base_url + path, body=body, is_idempotent=False)

    # ------------------------------------------------------------ pagination

    def _offset_items(
        self,
        code: str,
        path: str,
        params: Mapping[str, Any],
        extract: Callable[[Any], tuple[list[Any], int | None]],
    ) -> Iterator[Any]:
        """Offset pagination: follow ``Link rel="next"``, else ``total_count``."""
        url: str = self.base_url + path
        query: dict[str, Any] | None = {**params, "max": self.page_size}
        offset = 0
        followed: set[str] = set()
        while True:
            response = self._send(code, "GET", url, params=query)
            body = self._json(code, response)
            try:
                items, total = extract(body)
            except (KeyError, TypeError, AttributeError, MiraklDataError):
                raise MiraklBadResponse(f"{code}: unexpected response shape", code=code) from None
            yield from items
            if not items:
                return
            offset += len(items)
            next_url = response.links.get("next", {}).get("url")
            if next_url and next_url not in followed:
                followed.add(next_url)
                url, query = urljoin(self.base_url + "/", next_url), None
            elif total is not None and offset < total and not followed:
                url, query = (
                    self.base_url + path,
                    {**params, "max": self.page_size, "offset": offset},
                )
            else:
                return

    def _seek_items(self, code: str, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
        """Seek pagination: ``limit`` then ``page_token`` alone, as Mirakl expects."""
        query: Mapping[str, Any] = {**params, "limit": self.page_size}
        while True:
            body = self._get(code, path, query)
            data = body.get("data") if isinstance(body, Mapping) else None
            if not isinstance(data, list):
                raise MiraklBadResponse(f"{code}: response has no data list", code=code)
            yield from data
            token = body.get("next_page_token")
            if not token or not data:
                return
            query = {"page_token": token}

    @staticmethod
    def _parsed(
        code: str, raws: Iterable[Any], parse: Callable[[Any], T], *id_keys: str
    ) -> Iterator[T | BadItem]:
        for raw in raws:
            try:
                yield parse(raw)
            except MiraklError as exc:
                yield BadItem(code, guess_id(raw, *id_keys), str(exc), raw)

    # ------------------------------------------------------------ shops

    def get_version(self) -> str:
        """V01: the Mirakl version, as a cheap reachability check."""
        body = self._get("V01", "/api/version")
        return str(body.get("version", "")) if isinstance(body, Mapping) else ""

    def list_shops(
        self, *, updated_since: str | None = None, shop_ids: Sequence[int] | None = None
    ) -> Iterator[Shop | BadItem]:
        """S20: shops of both domains, all of them, updated since a date, or by id."""
        base = {"domains": "PRODUCT,SERVICE"}
        if updated_since:
            base["updated_since"] = updated_since

        def pages(params: Mapping[str, Any]) -> Iterator[Any]:
            return self._offset_items(
                "S20", "/api/shops", params, lambda b: (list(b["shops"]), b.get("total_count"))
            )

        if shop_ids is None:
            raws: Iterable[Any] = pages(base)
        else:
            raws = (
                raw
                for batch in batches([str(i) for i in shop_ids])
                for raw in pages({**base, "shop_ids": ",".join(batch)})
            )
        return self._parsed("S20", raws, parse_shop, "shop_id")

    def update_shops(self, patches: Sequence[Mapping[str, Any]]) -> list[ShopUpdateResult]:
        """S07: patch shops (custom fields, KYC), 100 per call; one result per shop.

        Mirakl reports per-shop errors inside a 200; a whole batch refused with a 4xx gives
        every shop of that batch the same error.
        """
        results: list[ShopUpdateResult] = []
        for batch in batches(list(patches)):
            ids = [p.get("shop_id") for p in batch]
            try:
                response = self._put("S07", "/api/shops", {"shops": batch})
            except MiraklRejected as exc:
                results.extend(ShopUpdateResult(i, exc.message) for i in ids)
                continue
            body = self._json("S07", response) if response.content else {}
            returns = body.get("shop_returns") if isinstance(body, Mapping) else None
            if not isinstance(returns, list):
                results.extend(ShopUpdateResult(i, None) for i in ids)
                continue
            for index, entry in enumerate(returns):
                sent = ids[index] if index < len(ids) else None
                results.append(
                    parse_shop_return(entry, sent)
                    if isinstance(entry, Mapping)
                    else ShopUpdateResult(sent, "unreadable shop_returns entry")
                )
        return results

    # ------------------------------------------------------------ product orders

    @staticmethod
    def _orders(body: Any) -> tuple[list[Any], int | None]:
        return list(body["orders"]), body.get("total_count")

    def list_orders(self, *, start_date: str | None = None) -> Iterator[ProductOrder | BadItem]:
        """OR11: product orders created since ``start_date`` (all of them when None)."""
        params = {"start_date": start_date} if start_date else {}
        raws = self._offset_items("OR11", "/api/orders", params, self._orders)
        return self._parsed("OR11", raws, parse_product_order, "order_id")

    def list_orders_by_id(self, order_ids: Sequence[str]) -> Iterator[ProductOrder | BadItem]:
        """OR11 ``order_ids``: product orders by id, 100 ids per call (``_TAX`` stripped)."""
        return self._orders_by("order_ids", sorted({strip_tax_suffix(i) for i in order_ids}))

    def list_orders_by_commercial_id(
        self, commercial_ids: Sequence[str]
    ) -> Iterator[ProductOrder | BadItem]:
        """OR11 ``commercial_ids``: every logistical order of these commercial orders."""
        return self._orders_by("commercial_ids", sorted(set(commercial_ids)))

    def _orders_by(self, key: str, ids: list[str]) -> Iterator[ProductOrder | BadItem]:
        raws = (
            raw
            for batch in batches(ids)
            for raw in self._offset_items(
                "OR11", "/api/orders", {key: ",".join(batch)}, self._orders
            )
        )
        return self._parsed("OR11", raws, parse_product_order, "order_id")

    # ------------------------------------------------------------ debits

    @staticmethod
    def _wrapped_orders(body: Any) -> tuple[list[Any], int | None]:
        orders = body["orders"]
        items = orders.get("order") or []
        if isinstance(items, Mapping):
            items = [items]
        total = orders.get("total_count", body.get("total_count"))
        return list(items), total

    def list_pending_debits(self) -> Iterator[PendingDebit | BadItem]:
        """PA11: product orders waiting for the customer debit to be confirmed."""
        raws = self._offset_items("PA11", "/api/payment/debit", {}, self._wrapped_orders)
        return self._parsed("PA11", raws, parse_pending_debit, "order_id")

    def confirm_debits(self, entries: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """PA01: confirm (OK) or refuse (REFUSED) debits; one error (or None) per entry."""
        return self._put_isolating(
            "PA01", "/api/payment/debit", entries, lambda batch: {"orders": batch}
        )

    def list_service_debits(self, order_ids: Sequence[str]) -> Iterator[ServiceDebit | BadItem]:
        """SPA11: debits of these service orders, 100 order ids per call."""
        ids = sorted({strip_tax_suffix(i) for i in order_ids})
        raws = (
            raw
            for batch in batches(ids)
            for raw in self._seek_items("SPA11", "/api/mms/debits", {"order_id": batch})
        )
        return self._parsed("SPA11", raws, parse_service_debit, "order_id")

    # ------------------------------------------------------------ service orders

    def list_service_orders(
        self, *, date_created_start: str | None = None
    ) -> Iterator[ServiceOrder | BadItem]:
        """SOR11: service orders created since a date (all of them when None)."""
        params = {"date_created_start": date_created_start} if date_created_start else {}
        raws = self._seek_items("SOR11", "/api/mms/orders", params)
        return self._parsed("SOR11", raws, parse_service_order, "id")

    def list_service_orders_by_id(
        self, order_ids: Sequence[str]
    ) -> Iterator[ServiceOrder | BadItem]:
        """SOR11 ``order_id``: service orders by id, 100 per call (``_TAX`` stripped)."""
        return self._service_orders_by("order_id", sorted({strip_tax_suffix(i) for i in order_ids}))

    def list_service_orders_by_commercial_id(
        self, commercial_ids: Sequence[str]
    ) -> Iterator[ServiceOrder | BadItem]:
        """SOR11 ``commercial_order_id``: service orders of these commercial orders."""
        return self._service_orders_by("commercial_order_id", sorted(set(commercial_ids)))

    def _service_orders_by(self, key: str, ids: list[str]) -> Iterator[ServiceOrder | BadItem]:
        raws = (
            raw
            for batch in batches(ids)
            for raw in self._seek_items("SOR11", "/api/mms/orders", {key: batch})
        )
        return self._parsed("SOR11", raws, parse_service_order, "id")

    # ------------------------------------------------------------ refunds

    def list_pending_refunds(self) -> Iterator[PendingRefund | BadItem]:
        """PA12: product refunds waiting for payment, one item per refund line."""
        raws = self._offset_items("PA12", "/api/payment/refund", {}, self._wrapped_orders)
        for raw in raws:
            try:
                yield from parse_pending_refund_order(raw)
            except MiraklError as exc:
                yield BadItem("PA12", guess_id(raw, "order_id"), str(exc), raw)

    def confirm_refunds(self, entries: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """PA02: validate (OK) or refuse product refunds; one error (or None) per entry."""
        return self._put_isolating(
            "PA02", "/api/payment/refund", entries, lambda batch: {"refunds": batch}
        )

    def list_service_pending_refunds(self) -> Iterator[PendingRefund | BadItem]:
        """SPA12: service refunds waiting for payment."""
        raws = self._seek_items("SPA12", "/api/mms/refunds", {})
        return self._parsed("SPA12", raws, parse_service_pending_refund, "id")

    def confirm_service_refunds(self, entries: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """SPA02: validate service refunds (the body is a bare JSON array)."""
        return self._put_isolating("SPA02", "/api/mms/refunds", entries, lambda batch: batch)

    # ------------------------------------------------------------ invoices

    def list_invoices(
        self, *, start_date: str | None = None, shop_id: int | None = None
    ) -> Iterator[Invoice | BadItem]:
        """IV01: seller invoices created since a date, or all invoices of one shop."""
        params: dict[str, Any] = {}
        if start_date:
            params["start_date"] = start_date
        if shop_id is not None:
            params["shop"] = shop_id
        raws = self._offset_items(
            "IV01", "/api/invoices", params, lambda b: (list(b["invoices"]), b.get("total_count"))
        )
        return self._parsed("IV01", raws, parse_invoice, "invoice_id")

    # ------------------------------------------------------------ batched writes

    def _put_isolating(
        self,
        code: str,
        path: str,
        entries: Sequence[Mapping[str, Any]],
        wrap: Callable[[list[Mapping[str, Any]]], Any],
    ) -> list[str | None]:
        """PUT entries 100 at a time; when Mirakl refuses a batch, retry its entries one by
        one so that a single bad entry gets the error and the others go through."""
        errors: list[str | None] = []
        for batch in batches(list(entries)):
            try:
                self._put(code, path, wrap(batch))
                errors.extend([None] * len(batch))
                continue
            except MiraklRejected as exc:
                if len(batch) == 1:
                    errors.append(exc.message)
                    continue
            for entry in batch:
                try:
                    self._put(code, path, wrap([entry]))
                    errors.append(None)
                except MiraklRejected as exc:
                    errors.append(exc.message)
        return errors
