"""Builders of realistic Mirakl items for tests and the demo (pure functions, JSON-ready dicts).

Shapes follow the reference connector's fixtures
(docs/reference-behaviour.md#worked-examples). Amounts may be
given as ``Decimal``, ``str``, ``int`` or ``float`` and come out as JSON numbers. Defaults
reproduce the spec's worked example:

* product order: ``total_price`` 69.12, ``total_commission`` 3.99; line ``<id>-1`` 12.34 with
  shipping taxes 1.12 + 1.34 and taxes 1.56 + 1.78; line ``<id>-2`` 56.78 with shipping taxes
  2.12 + 2.34 and taxes 2.56 + 2.78 (amount due, tax excluded: 84.72);
* service order: price 12.34, options BOOLEAN 1.12 + VALUE_LIST [1.34], taxes 1.56 + 1.78,
  commission 3.99 (amount due, tax excluded: 18.14);
* invoice summary: transferred 12.34, subscription -9.99, other credits 56.78, other invoices
  -98.76.

Every builder accepts ``**overrides`` merged last (shallow) into the item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

Amount = Decimal | str | int | float
#: a tax as ``(amount, code)`` or an already built ``{"amount": ..., "code": ...}`` dict
TaxSpec = tuple[Amount, str] | dict[str, Any]

DEFAULT_CREATED = "2024-01-02T10:00:00Z"
DEFAULT_SERVICE_CREATED = "2024-01-02T10:00:00.000Z"
DEFAULT_CUSTOMER = "customer_basic"
LINE1_SHIPPING_TAXES: tuple[TaxSpec, ...] = (("1.12", "ECO_TAX"), ("1.34", "EXP_TAX"))
LINE1_TAXES: tuple[TaxSpec, ...] = (("1.56", "ECO_TAX"), ("1.78", "EXP_TAX"))
LINE2_SHIPPING_TAXES: tuple[TaxSpec, ...] = (("2.12", "ECO_TAX"), ("2.34", "EXP_TAX"))
LINE2_TAXES: tuple[TaxSpec, ...] = (("2.56", "ECO_TAX"), ("2.78", "EXP_TAX"))
#: order states in which the customer has not been debited yet
UNPAID_STATES = frozenset(
    {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "REFUSED"}
)
EXCLUDED_LINE_STATES = frozenset({"REFUSED", "CANCELED"})


def money(value: Amount) -> float | int:
    """An amount as a JSON number: ``money("12.30") == 12.3``, ``money(5) == 5``."""
    decimal = Decimal(str(value))
    return int(decimal) if decimal == decimal.to_integral_value() else float(decimal)


def make_tax(amount: Amount, code: str = "ECO_TAX") -> dict[str, Any]:
    """A tax entry ``{"amount": n, "code": code}``."""
    return {"amount": money(amount), "code": code}


def make_taxes(taxes: Iterable[TaxSpec]) -> list[dict[str, Any]]:
    """Tax entries from ``(amount, code)`` pairs (dicts are kept as given)."""
    return [dict(tax) if isinstance(tax, dict) else make_tax(*tax) for tax in taxes]


def commercial_id_of(order_id: str) -> str:
    """Default commercial id: the order id without its last ``-xxx`` segment."""
    return order_id.rsplit("-", 1)[0] if "-" in order_id else order_id


# --- shops -----------------------------------------------------------------------------------


def make_shop(
    shop_id: int,
    *,
    contact: Mapping[str, Any] | None = None,
    additional_fields: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """An S20 shop: OPEN, EUR, not professional, no additional fields, KYC pending.

    :param contact: merged into ``contact_informations`` (e.g. ``{"phone": ""}``).
    :param additional_fields: ``{code: value}``, as ``shop_additional_fields`` entries.
    """
    shop: dict[str, Any] = {
        "shop_id": shop_id,
        "shop_name": f"Shop {shop_id}",
        "shop_state": "OPEN",
        "currency_iso_code": "EUR",
        "date_created": "2024-01-01T09:00:00Z",
        "last_updated_date": DEFAULT_CREATED,
        "is_professional": False,
        "shop_additional_fields": [],
        "pro_details": {
            "corporate_name": f"Shop {shop_id} SAS",
            "identification_number": f"SIRET{shop_id:09d}",
            "tax_identification_number": f"TIN{shop_id:06d}",
            "VAT_number": f"FR{shop_id:011d}",
        },
        "contact_informations": {
            "civility": "Mrs",
            "firstname": "Jane",
            "lastname": f"Seller{shop_id}",
            "email": f"seller{shop_id}@example.com",
            "phone": "+33100000000",
            "web_site": f"https://shop{shop_id}.example.com",
            "street1": "1 rue de la Paix",
            "zip_code": "75002",
            "city": "Paris",
            "country": "FRA",
        },
        "payment_details": {"payment_blocked": False},
        "kyc": {"status": "PENDING_SUBMISSION", "reason": None},
    }
    shop["contact_informations"].update(contact or {})
    shop["shop_additional_fields"] = [
        {"code": code, "value": value} for code, value in (additional_fields or {}).items()
    ]
    shop.update(overrides)
    return shop


# --- product orders --------------------------------------------------------------------------


def make_refund_line(
    refund_id: str | int,
    amount: Amount = "12.34",
    commission_total_amount: Amount = "1.23",
    state: str = "WAITING_REFUND_PAYMENT",
    shipping_taxes: Iterable[TaxSpec] = (),
    taxes: Iterable[TaxSpec] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """A product refund, the entry of ``order_lines[].refunds[]`` (listed by PA12 while
    ``state`` is ``WAITING_REFUND_PAYMENT``)."""
    refund: dict[str, Any] = {
        "id": refund_id,
        "amount": money(amount),
        "commission_total_amount": money(commission_total_amount),
        "shipping_taxes": make_taxes(shipping_taxes),
        "taxes": make_taxes(taxes),
        "state": state,
    }
    refund.update(overrides)
    return refund


def make_cancelation(
    amount: Amount,
    shipping_taxes: Iterable[TaxSpec] = (),
    taxes: Iterable[TaxSpec] = (),
) -> dict[str, Any]:
    """An entry of ``order_lines[].cancelations[]``."""
    return {
        "amount": money(amount),
        "shipping_taxes": make_taxes(shipping_taxes),
        "taxes": make_taxes(taxes),
    }


def make_order_line(
    order_line_id: str,
    total_price: Amount,
    state: str = "SHIPPING",
    shipping_taxes: Iterable[TaxSpec] = (),
    taxes: Iterable[TaxSpec] = (),
    refunds: Sequence[dict[str, Any]] = (),
    cancelations: Sequence[dict[str, Any]] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """An OR11 order line."""
    line: dict[str, Any] = {
        "order_line_id": order_line_id,
        "order_line_state": state,
        "total_price": money(total_price),
        "shipping_taxes": make_taxes(shipping_taxes),
        "taxes": make_taxes(taxes),
        "cancelations": [dict(c) for c in cancelations],
        "refunds": [dict(r) for r in refunds],
    }
    line.update(overrides)
    return line


def default_order_lines(order_id: str, state: str = "SHIPPING") -> list[dict[str, Any]]:
    """The two taxed lines of the worked example (``<id>-1`` 12.34, ``<id>-2`` 56.78)."""
    return [
        make_order_line(f"{order_id}-1", "12.34", state, LINE1_SHIPPING_TAXES, LINE1_TAXES),
        make_order_line(f"{order_id}-2", "56.78", state, LINE2_SHIPPING_TAXES, LINE2_TAXES),
    ]


def make_product_order(
    order_id: str,
    commercial_id: str | None = None,
    shop_id: int | None = 1,
    state: str = "SHIPPING",
    total_price: Amount | None = None,
    commission: Amount = "3.99",
    lines: list[dict[str, Any]] | None = None,
    created_date: str = DEFAULT_CREATED,
    tax_mode: str = "TAX_EXCLUDED",
    *,
    line_state: str | None = None,
    refunds: Sequence[dict[str, Any]] = (),
    customer_id: str = DEFAULT_CUSTOMER,
    currency: str = "EUR",
    payment_workflow: str = "PAY_ON_ACCEPTANCE",
    debited: bool | None = None,
    transaction_number: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """An OR11 product (logistical) order.

    :param commercial_id: default: ``order_id`` without its last ``-xxx`` segment.
    :param shop_id: ``None`` leaves ``shop_id`` out (a malformed order).
    :param total_price: default: sum of the totals of lines not REFUSED/CANCELED.
    :param lines: default: :func:`default_order_lines` in ``line_state`` (default ``state``).
    :param refunds: product refunds (:func:`make_refund_line`) added to the first line.
    :param debited: sets ``customer_debited_date`` (to ``created_date``); default: true unless
        ``state`` is one where the customer has not been debited yet (:data:`UNPAID_STATES`).
    """
    order_lines = lines if lines is not None else default_order_lines(order_id, line_state or state)
    if refunds and order_lines:
        order_lines[0]["refunds"] = list(order_lines[0].get("refunds", [])) + [
            dict(r) for r in refunds
        ]
    if total_price is None:
        total_price = sum(
            (
                Decimal(str(line["total_price"]))
                for line in order_lines
                if line.get("order_line_state") not in EXCLUDED_LINE_STATES
            ),
            Decimal(0),
        )
    if debited is None:
        debited = state not in UNPAID_STATES
    order: dict[str, Any] = {
        "order_id": order_id,
        "commercial_id": commercial_id or commercial_id_of(order_id),
        "created_date": created_date,
        "last_updated_date": created_date,
        "customer_debited_date": created_date if debited else None,
        "currency_iso_code": currency,
        "order_state": state,
        "order_tax_mode": tax_mode,
        "payment_workflow": payment_workflow,
        "shop_id": shop_id,
        "total_commission": money(commission),
        "total_price": money(total_price),
        "customer": {"customer_id": customer_id},
        "order_lines": order_lines,
    }
    if shop_id is None:
        del order["shop_id"]
    if transaction_number is not None:
        order["transaction_number"] = transaction_number
    order.update(overrides)
    return order


# --- service orders --------------------------------------------------------------------------


def make_service_refund(
    refund_id: str | int,
    amount: Amount = "12.34",
    commission: Amount = "1.23",
    state: str = "WAITING",
    shipping_taxes: Iterable[TaxSpec] = (),
    taxes: Iterable[TaxSpec] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """A service refund, the entry of a service order's ``refunds[]`` (listed by SPA12 while
    ``state`` is ``WAITING``)."""
    refund: dict[str, Any] = {
        "id": refund_id,
        "amount": money(amount),
        "commission": {"amount_including_taxes": money(commission)},
        "shipping_taxes": make_taxes(shipping_taxes),
        "taxes": make_taxes(taxes),
        "state": state,
    }
    refund.update(overrides)
    return refund


def make_service_order(
    order_id: str,
    commercial_order_id: str | None = None,
    shop_id: int | None = 1,
    state: str = "ORDER_ACCEPTED",
    price: Amount = "12.34",
    commission: Amount = "3.99",
    created_date: str = DEFAULT_SERVICE_CREATED,
    tax_mode: str = "TAX_EXCLUDED",
    *,
    options: list[dict[str, Any]] | None = None,
    taxes: Iterable[TaxSpec] = LINE1_TAXES,
    refunds: Sequence[dict[str, Any]] = (),
    customer_id: str = DEFAULT_CUSTOMER,
    currency: str = "EUR",
    workflow: str = "PAY_ON_ACCEPTANCE",
    **overrides: Any,
) -> dict[str, Any]:
    """A SOR11 service order.

    :param options: default: BOOLEAN 1.12 and VALUE_LIST [1.34].
    :param shop_id: ``None`` leaves ``shop`` out (a malformed order).
    :param refunds: service refunds (:func:`make_service_refund`).
    """
    if options is None:
        options = [
            {"type": "BOOLEAN", "amount": money("1.12")},
            {"type": "VALUE_LIST", "values": [{"amount": money("1.34")}]},
        ]
    order: dict[str, Any] = {
        "id": order_id,
        "commercial_order_id": commercial_order_id or commercial_id_of(order_id),
        "date_created": created_date,
        "currency_code": currency,
        "state": state,
        "order_tax_mode": tax_mode,
        "workflow": {"type": workflow},
        "shop": {"id": shop_id},
        "customer": {"id": customer_id},
        "commission": {"amount_including_taxes": money(commission)},
        "price": {"amount": money(price), "options": options, "taxes": make_taxes(taxes)},
        "refunds": [dict(r) for r in refunds],
    }
    if shop_id is None:
        del order["shop"]
    order.update(overrides)
    return order


def make_service_debit(
    order_id: str,
    amount: Amount = "12.34",
    state: str = "OK",
    customer_id: str = DEFAULT_CUSTOMER,
    currency: str = "EUR",
    transaction_number: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A SPA11 service debit (``state`` ``OK`` = paid, ``WAITING`` = not yet)."""
    debit: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "amount": money(amount),
        "currency_code": currency,
        "state": state,
    }
    if transaction_number is not None:
        debit["transaction_number"] = transaction_number
    debit.update(overrides)
    return debit


# --- invoices --------------------------------------------------------------------------------


def make_invoice(
    invoice_id: int,
    shop_id: int | None = 1,
    date_created: str = DEFAULT_CREATED,
    amount_transferred: Amount = "12.34",
    subscription: Amount = "-9.99",
    other_credits: Amount = "56.78",
    other_invoices: Amount = "-98.76",
    currency: str = "EUR",
    end_time: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """An IV01 accounting document (AUTO_INVOICE). ``shop_id=None`` leaves it out."""
    invoice: dict[str, Any] = {
        "invoice_id": invoice_id,
        "id": str(invoice_id),
        "type": "AUTO_INVOICE",
        "shop_id": shop_id,
        "currency_iso_code": currency,
        "date_created": date_created,
        "end_time": end_time or date_created,
        "summary": {
            "amount_transferred": money(amount_transferred),
            "total_subscription_incl_tax": money(subscription),
            "total_other_credits_incl_tax": money(other_credits),
            "total_other_invoices_incl_tax": money(other_invoices),
        },
    }
    if shop_id is None:
        del invoice["shop_id"]
    invoice.update(overrides)
    return invoice


# --- demo ------------------------------------------------------------------------------------


def demo_dataset() -> dict[str, list[dict[str, Any]]]:
    """A small coherent marketplace for ``python -m sandbox.mirakl --demo``: 3 shops, product
    orders waiting debit / shipping / refunded / partially refused, service orders with a
    waiting refund, their debits, and invoices. Keys are the control API collections."""
    return {
        "shops": [
            make_shop(1, shop_name="Green Garden", is_professional=True),
            make_shop(2, shop_name="Blue Books", currency_iso_code="EUR"),
            make_shop(3, shop_name="Red Records", last_updated_date="2024-01-03T08:00:00Z"),
        ],
        "orders": [
            make_product_order(
                "DEMO-1001-A",
                state="WAITING_DEBIT_PAYMENT",
                shop_id=1,
                created_date="2024-01-05T09:00:00Z",
            ),
            make_product_order(
                "DEMO-1001-B",
                state="WAITING_DEBIT_PAYMENT",
                shop_id=2,
                created_date="2024-01-05T09:00:01Z",
            ),
            make_product_order(
                "DEMO-1002-A", state="SHIPPING", shop_id=1, created_date="2024-01-04T12:00:00Z"
            ),
            make_product_order(
                "DEMO-1003-A",
                state="CLOSED",
                shop_id=2,
                created_date="2024-01-03T15:30:00Z",
                refunds=[make_refund_line("5001")],
            ),
            make_product_order(
                "DEMO-1004-A",
                state="CLOSED",
                shop_id=3,
                created_date="2024-01-03T16:00:00Z",
                lines=[
                    make_order_line(
                        "DEMO-1004-A-1", "12.34", "CLOSED", LINE1_SHIPPING_TAXES, LINE1_TAXES
                    ),
                    make_order_line(
                        "DEMO-1004-A-2", "56.78", "REFUSED", LINE2_SHIPPING_TAXES, LINE2_TAXES
                    ),
                ],
            ),
        ],
        "service_orders": [
            make_service_order("DEMO-2001-A", shop_id=1, created_date="2024-01-04T10:00:00.000Z"),
            make_service_order(
                "DEMO-2002-A",
                shop_id=2,
                state="ORDER_CLOSED",
                created_date="2024-01-04T11:00:00.000Z",
                refunds=[make_service_refund("6001")],
            ),
        ],
        "service_debits": [
            make_service_debit("DEMO-2001-A", amount="18.14"),
            make_service_debit("DEMO-2002-A", amount="18.14"),
        ],
        "invoices": [
            make_invoice(1, 1, date_created="2024-01-31T23:00:00Z"),
            make_invoice(2, 2, date_created="2024-01-31T23:00:01Z"),
        ],
    }
