"""What the Mirakl client returns: frozen dataclasses, parsed from Mirakl JSON at the edge.

Amounts become ``Decimal`` (never float); dates become naive UTC ``datetime`` with the raw
string kept beside them (checkpoints are stored as Mirakl wrote them). A malformed item
raises ``MiraklDataError`` naming the field, which the client turns into a ``BadItem`` so
that one bad item never aborts a run. Unknown fields are ignored. The generic field readers
these parsers use live in ``mirakl/fields.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from webapp.errors import MiraklDataError
from webapp.services.mirakl.fields import (
    ZERO,
    currency_code,
    obj,
    obj_list,
    opt_currency_code,
    opt_date,
    opt_decimal,
    opt_int,
    opt_str,
    req_decimal,
    req_int,
    req_str,
    sum_amounts,
    to_decimal,
)


@dataclass(frozen=True)
class BadItem:
    """An item Mirakl returned that we could not read; ``mirakl_id`` when one was found."""

    code: str
    mirakl_id: str | None
    reason: str
    raw: Any = field(repr=False, compare=False, default=None)


# ---------------------------------------------------------------- shops (S20, S07)


@dataclass(frozen=True)
class Shop:
    id: int
    name: str
    last_updated_date: datetime | None
    last_updated_raw: str
    is_professional: bool
    email: str
    web_site: str
    phone: str
    additional_fields: Mapping[str, str]
    currency: str = ""


def parse_shop(data: Mapping[str, Any]) -> Shop:
    contact = obj(data, "contact_informations")
    updated, updated_raw = opt_date(data, "last_updated_date")
    fields: dict[str, str] = {}
    for item in obj_list(data, "shop_additional_fields"):
        code = opt_str(item, "code")
        if code:
            value = item.get("value")
            fields[code] = (
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    return Shop(
        id=req_int(data, "shop_id"),
        name=opt_str(data, "shop_name"),
        last_updated_date=updated,
        last_updated_raw=updated_raw,
        is_professional=bool(data.get("is_professional")),
        email=opt_str(contact, "email"),
        web_site=opt_str(contact, "web_site"),
        phone=opt_str(contact, "phone"),
        additional_fields=fields,
        currency=opt_currency_code(data, "currency_iso_code"),
    )


@dataclass(frozen=True)
class ShopUpdateResult:
    """One entry of S07's ``shop_returns``: ``error`` is None when the shop was updated."""

    shop_id: int | None
    error: str | None


def parse_shop_return(data: Mapping[str, Any], sent_shop_id: int | None) -> ShopUpdateResult:
    if not isinstance(data, Mapping):
        raise MiraklDataError(f"expected an object, got {type(data).__name__}")
    if "shop_error" in data:
        err = obj(data, "shop_error")
        errors = err.get("errors")
        if isinstance(errors, list) and errors:
            text = "; ".join(
                f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
                for e in errors
                if isinstance(e, Mapping)
            )
        else:
            text = str(err.get("message") or err or "unknown error")
        return ShopUpdateResult(opt_int(err, "shop_id") or sent_shop_id, text or "unknown error")
    updated = obj(data, "shop_updated")
    return ShopUpdateResult(opt_int(updated, "shop_id") or sent_shop_id, None)


# ---------------------------------------------------------------- custom fields (AF01)


@dataclass(frozen=True)
class AdditionalField:
    """One custom field: ``type`` (LINK, BOOLEAN, STRING, LIST...), ``entity`` (SHOP...) and
    what a seller may do with it (``shop_permission``: READ_WRITE, READ_ONLY, INVISIBLE;
    empty when Mirakl does not say)."""

    code: str
    type: str
    entity: str
    label: str = ""
    required: bool = False
    shop_permission: str = ""


def parse_additional_field(data: Mapping[str, Any]) -> AdditionalField:
    if not isinstance(data, Mapping):
        raise MiraklDataError(f"expected an object, got {type(data).__name__}")
    return AdditionalField(
        code=req_str(data, "code"),
        type=opt_str(data, "type").upper(),
        entity=opt_str(data, "entity").upper(),
        label=opt_str(data, "label"),
        required=data.get("required") is True,
        shop_permission=opt_str(data, "shop_permission").upper(),
    )


# ---------------------------------------------------------------- product orders (OR11)


@dataclass(frozen=True)
class LineRefund:
    id: str
    amount: Decimal
    commission_total_amount: Decimal
    taxes: Decimal  # shipping taxes + taxes of the refund entry
    state: str = ""  # WAITING_REFUND, WAITING_REFUND_PAYMENT, REFUNDED (reconciliation)


@dataclass(frozen=True)
class Cancelation:
    amount: Decimal
    taxes: Decimal  # shipping taxes + taxes of the cancelation


@dataclass(frozen=True)
class OrderLine:
    id: str
    state: str
    total_price: Decimal
    product_taxes: Decimal  # Σ taxes[]
    shipping_taxes: Decimal  # Σ shipping_taxes[]
    cancelations: tuple[Cancelation, ...]
    refunds: tuple[LineRefund, ...]


@dataclass(frozen=True)
class ProductOrder:
    id: str
    commercial_id: str
    state: str
    shop_id: int | None
    created_date: datetime | None
    created_raw: str
    customer_debited_date: str
    currency: str
    tax_mode: str
    total_price: Decimal
    total_commission: Decimal
    transaction_number: str
    customer_id: str
    lines: tuple[OrderLine, ...]


def _line_taxes(item: Mapping[str, Any], what: str) -> Decimal:
    return sum_amounts(obj_list(item, "shipping_taxes"), f"{what}.shipping_taxes") + sum_amounts(
        obj_list(item, "taxes"), f"{what}.taxes"
    )


def parse_order_line(data: Mapping[str, Any]) -> OrderLine:
    line_id = req_str(data, "order_line_id")
    what = f"order_lines[{line_id}]"
    return OrderLine(
        id=line_id,
        state=opt_str(data, "order_line_state"),
        total_price=opt_decimal(data, "total_price"),
        product_taxes=sum_amounts(obj_list(data, "taxes"), f"{what}.taxes"),
        shipping_taxes=sum_amounts(obj_list(data, "shipping_taxes"), f"{what}.shipping_taxes"),
        cancelations=tuple(
            Cancelation(
                to_decimal(c.get("amount"), f"{what}.cancelations.amount"),
                _line_taxes(c, f"{what}.cancelations"),
            )
            for c in obj_list(data, "cancelations")
        ),
        refunds=tuple(
            LineRefund(
                id=req_str(r, "id"),
                amount=opt_decimal(r, "amount"),
                commission_total_amount=opt_decimal(r, "commission_total_amount"),
                taxes=_line_taxes(r, f"{what}.refunds"),
                state=opt_str(r, "state"),
            )
            for r in obj_list(data, "refunds")
        ),
    )


def parse_product_order(data: Mapping[str, Any]) -> ProductOrder:
    created, created_raw = opt_date(data, "created_date")
    customer = obj(data, "customer")
    return ProductOrder(
        id=req_str(data, "order_id"),
        commercial_id=opt_str(data, "commercial_id"),
        state=req_str(data, "order_state"),
        # Missing: the transfer goes ON_HOLD "No shop ID provided", as in the reference.
        shop_id=opt_int(data, "shop_id"),
        created_date=created,
        created_raw=created_raw,
        customer_debited_date=opt_str(data, "customer_debited_date"),
        currency=currency_code(data, "currency_iso_code"),
        tax_mode=opt_str(data, "order_tax_mode") or "TAX_EXCLUDED",
        total_price=req_decimal(data, "total_price"),
        total_commission=opt_decimal(data, "total_commission"),
        transaction_number=opt_str(data, "transaction_number"),
        customer_id=opt_str(customer, "customer_id"),
        lines=tuple(parse_order_line(line) for line in obj_list(data, "order_lines")),
    )


# ---------------------------------------------------------------- service orders (SOR11)


@dataclass(frozen=True)
class ServiceRefund:
    id: str
    amount: Decimal
    commission: Decimal
    taxes: Decimal
    state: str = ""  # WAITING, OK (paid), ... (reconciliation)


@dataclass(frozen=True)
class ServiceOrder:
    id: str
    commercial_id: str
    state: str
    shop_id: int | None
    created_date: datetime | None
    created_raw: str
    currency: str
    tax_mode: str
    price: Decimal
    options: Decimal  # Σ BOOLEAN amounts + Σ VALUE_LIST values
    taxes: Decimal  # Σ price.taxes
    commission: Decimal
    customer_id: str
    refunds: tuple[ServiceRefund, ...]


def _service_options(price: Mapping[str, Any]) -> Decimal:
    total = ZERO
    for option in obj_list(price, "options"):
        kind = option.get("type")
        if kind == "BOOLEAN":
            total += opt_decimal(option, "amount")
        elif kind == "VALUE_LIST":
            total += sum_amounts(obj_list(option, "values"), "price.options.values")
    return total


def parse_service_order(data: Mapping[str, Any]) -> ServiceOrder:
    created, created_raw = opt_date(data, "date_created")
    price = obj(data, "price")
    return ServiceOrder(
        id=req_str(data, "id"),
        commercial_id=opt_str(data, "commercial_order_id") or opt_str(data, "commercial_id"),
        state=req_str(data, "state"),
        shop_id=opt_int(obj(data, "shop"), "id"),
        created_date=created,
        created_raw=created_raw,
        currency=currency_code(data, "currency_code"),
        tax_mode=opt_str(data, "order_tax_mode") or "TAX_EXCLUDED",
        price=req_decimal(price, "amount"),
        options=_service_options(price),
        taxes=sum_amounts(obj_list(price, "taxes"), "price.taxes"),
        commission=opt_decimal(obj(data, "commission"), "amount_including_taxes"),
        customer_id=opt_str(obj(data, "customer"), "id"),
        refunds=tuple(
            ServiceRefund(
                id=req_str(r, "id"),
                amount=opt_decimal(r, "amount"),
                commission=opt_decimal(obj(r, "commission"), "amount_including_taxes"),
                taxes=_line_taxes(r, "refunds"),
                state=opt_str(r, "state"),
            )
            for r in obj_list(data, "refunds")
        ),
    )


# ---------------------------------------------------------------- debits (PA11, SPA11)


@dataclass(frozen=True)
class PendingDebit:
    order_id: str
    commercial_id: str
    customer_id: str
    shop_id: int | None
    amount: Decimal
    currency: str


def _amount_and_currency(data: Mapping[str, Any], currency_key: str) -> tuple[Decimal, str]:
    """A debit's or refund's ``amount`` and its currency, read in that order (PA11 names the
    currency ``currency_iso_code``, SPA11 and SPA12 ``currency_code``)."""
    return req_decimal(data, "amount"), currency_code(data, currency_key)


def parse_pending_debit(data: Mapping[str, Any]) -> PendingDebit:
    order_id, commercial_id = req_str(data, "order_id"), req_str(data, "order_commercial_id")
    customer_id, shop_id = opt_str(data, "customer_id"), opt_int(data, "shop_id")
    amount, currency = _amount_and_currency(data, "currency_iso_code")
    return PendingDebit(order_id, commercial_id, customer_id, shop_id, amount, currency)


@dataclass(frozen=True)
class ServiceDebit:
    order_id: str
    customer_id: str
    amount: Decimal
    currency: str
    state: str
    transaction_number: str

    @property
    def is_paid(self) -> bool:
        return self.state == "OK"


def parse_service_debit(data: Mapping[str, Any]) -> ServiceDebit:
    order_id, customer_id = req_str(data, "order_id"), opt_str(data, "customer_id")
    amount, currency = _amount_and_currency(data, "currency_code")
    state, transaction_number = opt_str(data, "state"), opt_str(data, "transaction_number")
    return ServiceDebit(order_id, customer_id, amount, currency, state, transaction_number)


# ---------------------------------------------------------------- refunds (PA12, SPA12)


@dataclass(frozen=True)
class PendingRefund:
    id: str
    amount: Decimal
    currency: str
    commercial_id: str
    order_id: str
    order_line_id: str | None  # None for service refunds
    shop_id: int | None = None


def _one_or_many(value: Any, what: str) -> list[Mapping[str, Any]]:
    """Mirakl's XML-shaped JSON gives a lone object where a list of one is meant."""
    if value is None:
        return []
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise MiraklDataError(f"{what} must be a list of objects")
    return items


def parse_pending_refund_order(data: Mapping[str, Any]) -> list[PendingRefund]:
    """PA12 order → one pending refund per refund entry of each order line (flattened)."""
    order_id = req_str(data, "order_id")
    commercial_id = opt_str(data, "order_commercial_id")
    currency = currency_code(data, "currency_iso_code")
    shop_id = opt_int(data, "shop_id")
    refunds: list[PendingRefund] = []
    for line in _one_or_many(obj(data, "order_lines").get("order_line"), "order_line"):
        line_id = opt_str(line, "order_line_id") or None
        for entry in _one_or_many(obj(line, "refunds").get("refund"), "refund"):
            refunds.append(
                PendingRefund(
                    id=req_str(entry, "id"),
                    amount=req_decimal(entry, "amount"),
                    currency=currency,
                    commercial_id=commercial_id,
                    order_id=order_id,
                    order_line_id=line_id,
                    shop_id=shop_id,
                )
            )
    return refunds


def service_commercial_id(order_id: str) -> str:
    """Service order id without its last ``-xxx`` segment (``ABC-123-A`` → ``ABC-123``)."""
    return order_id.rsplit("-", 1)[0] if "-" in order_id else order_id


def parse_service_pending_refund(data: Mapping[str, Any]) -> PendingRefund:
    order_id, refund_id = req_str(data, "order_id"), req_str(data, "id")
    amount, currency = _amount_and_currency(data, "currency_code")
    return PendingRefund(
        id=refund_id,
        amount=amount,
        currency=currency,
        commercial_id=service_commercial_id(order_id),
        order_id=order_id,
        order_line_id=None,
    )


# ---------------------------------------------------------------- invoices (IV01)


@dataclass(frozen=True)
class Invoice:
    id: int
    shop_id: int | None
    currency: str
    created_date: datetime | None
    created_raw: str
    amount_transferred: Decimal
    total_subscription_incl_tax: Decimal
    total_other_credits_incl_tax: Decimal
    total_other_invoices_incl_tax: Decimal


def parse_invoice(data: Mapping[str, Any]) -> Invoice:
    created, created_raw = opt_date(data, "date_created")
    summary = obj(data, "summary")
    return Invoice(
        id=req_int(data, "invoice_id"),
        shop_id=opt_int(data, "shop_id"),
        currency=currency_code(data, "currency_iso_code"),
        created_date=created,
        created_raw=created_raw,
        amount_transferred=opt_decimal(summary, "amount_transferred"),
        total_subscription_incl_tax=opt_decimal(summary, "total_subscription_incl_tax"),
        total_other_credits_incl_tax=opt_decimal(summary, "total_other_credits_incl_tax"),
        total_other_invoices_incl_tax=opt_decimal(summary, "total_other_invoices_incl_tax"),
    )
