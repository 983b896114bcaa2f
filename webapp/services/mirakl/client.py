"""The only code that talks to Mirakl: one method per operator endpoint we use.

``MiraklClient`` builds on ``MiraklTransport`` (``mirakl/transport.py``: retries, 429,
pagination, id batching) and returns items as frozen dataclasses (``mirakl/types.py``), or as
``BadItem`` when one item is malformed, so a run never dies of one item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from webapp.errors import MiraklBadResponse, MiraklError, MiraklRejected
from webapp.services.chunking import chunked
from webapp.services.mirakl.fields import guess_id
from webapp.services.mirakl.transport import ID_BATCH, MiraklTransport
from webapp.services.mirakl.types import (
    AdditionalField,
    BadItem,
    Invoice,
    PendingDebit,
    PendingRefund,
    ProductOrder,
    ServiceDebit,
    ServiceOrder,
    Shop,
    ShopUpdateResult,
    parse_additional_field,
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

TAX_SUFFIX = "_TAX"
SERVICE_DEBIT_WAITING = "WAITING"  # SPA11 state of a debit Mirakl waits for

T = TypeVar("T")


def strip_tax_suffix(mirakl_id: str) -> str:
    """``ORDER-1-A_TAX`` → ``ORDER-1-A``: tax transfers are keyed on their order's id."""
    return mirakl_id[: -len(TAX_SUFFIX)] if mirakl_id.endswith(TAX_SUFFIX) else mirakl_id


class MiraklClient(MiraklTransport):
    """A Mirakl operator API client bound to one marketplace."""

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

    def list_additional_fields(self, entity: str = "SHOP") -> list[AdditionalField | BadItem]:
        """AF01: the marketplace's custom fields of one entity (shop fields by default)."""
        body = self._get("AF01", "/api/additional_fields", {"entities": entity})
        raws = body.get("additional_fields") if isinstance(body, Mapping) else None
        if not isinstance(raws, list):
            raise MiraklBadResponse("AF01: the answer has no additional_fields list", code="AF01")
        return list(self._parsed("AF01", raws, parse_additional_field, "code"))

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
                for batch in chunked([str(i) for i in shop_ids], ID_BATCH)
                for raw in pages({**base, "shop_ids": ",".join(batch)})
            )
        return self._parsed("S20", raws, parse_shop, "shop_id")

    def update_shops(self, patches: Sequence[Mapping[str, Any]]) -> list[ShopUpdateResult]:
        """S07: patch shops (custom fields, KYC), 100 per call; one result per shop.

        Mirakl reports per-shop errors inside a 200; a whole batch refused with a 4xx gives
        every shop of that batch the same error.
        """
        results: list[ShopUpdateResult] = []
        for batch in chunked(patches, ID_BATCH):
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
            for batch in chunked(ids, ID_BATCH)
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
            for batch in chunked(ids, ID_BATCH)
            for raw in self._seek_items("SPA11", "/api/mms/debits", {"order_id": batch})
        )
        return self._parsed("SPA11", raws, parse_service_debit, "order_id")

    def list_waiting_service_debits(self) -> Iterator[ServiceDebit | BadItem]:
        """SPA11: service debits waiting for the customer debit to be confirmed (``WAITING``)."""
        raws = self._seek_items("SPA11", "/api/mms/debits", {})
        return (
            item
            for item in self._parsed("SPA11", raws, parse_service_debit, "order_id")
            if isinstance(item, BadItem) or item.state == SERVICE_DEBIT_WAITING
        )

    def confirm_service_debits(self, entries: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """SPA01: confirm (OK) or refuse (REFUSED) service debits; one error (or None) each."""
        return self._put_isolating(
            "SPA01", "/api/mms/debits", entries, lambda batch: {"orders": batch}
        )

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
            for batch in chunked(ids, ID_BATCH)
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
