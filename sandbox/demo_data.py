"""The demo marketplace of ``python -m sandbox.demo``: payments first, then the Mirakl side.

Customer payments are created in the Stripe sandbox first, because Mirakl orders carry their
charge id (``transaction_number``). Every money flow of the connector appears once, plus a few
deliberate problems so the console has failures to look at and retry:

=====================  ===============  ===================================================
Mirakl item            shop             what the connector does with it
=====================  ===============  ===================================================
DEMO-1001-A / -B       1, 2             waiting debit: PA01 OK, capture of the PaymentIntent,
                                        then one transfer per order
DEMO-1002-A            1                paid order: transfer
DEMO-1003-A            2                paid order with refund 5001: transfer, Stripe refund
                                        + PA02, reversal of the seller's share
DEMO-1004-A            3                one line refused: transfer of the accepted line
DEMO-1005-A            1                charged in USD for a EUR order: transfer ON_HOLD
DEMO-1006-A            3                charge smaller than the seller's share (the customer
                                        paid the rest with a voucher): Stripe refuses the
                                        transfer, TRANSFER_FAILED
DEMO-1008-A            2                canceled order: transfer ABORTED
DEMO-2001-A            1                service order: transfer
DEMO-2002-A            2                service order with refund 6001: refund + reversal
invoices 1, 2          1, 2             invoice transfers and a payout; the bank rejects the
                                        first payout of shop 2 (``payout.failed``)
invoice 3              3                payout larger than the balance: PAYOUT_FAILED
invoice 4              4                shop never finishes onboarding: payout ON_HOLD
=====================  ===============  ===================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.mirakl.demo import (
    LINE1_SHIPPING_TAXES,
    LINE1_TAXES,
    LINE2_SHIPPING_TAXES,
    LINE2_TAXES,
    make_invoice,
    make_order_line,
    make_product_order,
    make_refund_line,
    make_service_debit,
    make_service_order,
    make_service_refund,
    make_shop,
)

METADATA_KEY = "mirakl_commercial_order_id"  # PAYMENT_METADATA_COMMERCIAL_ORDER_ID default
NEVER_ONBOARDED = frozenset({4})  # shops whose seller never finishes Stripe onboarding
BANK_REJECTS_FIRST_PAYOUT = frozenset({2})  # shops whose first payout the bank returns
#: what each seller already has in its Stripe balance once its account exists (EUR cents)
STARTING_BALANCES = {1: 300_00, 2: 300_00, 3: 100_00, 4: 100_00}
PLATFORM_BALANCES = {"eur": 100_000_00, "usd": 10_000_00}  # minor units


@dataclass(frozen=True)
class DemoPayment:
    """A customer payment to create in the Stripe sandbox (amount in minor units)."""

    key: str
    commercial_id: str
    amount: int
    currency: str = "eur"
    captured: bool = True
    with_payment_intent: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def charge_params(self) -> dict[str, Any]:
        """Keywords of ``StripeControl.create_charge`` for this payment."""
        metadata = {METADATA_KEY: self.commercial_id}
        params: dict[str, Any] = {
            "amount": self.amount,
            "currency": self.currency,
            "captured": self.captured,
            "with_payment_intent": self.with_payment_intent,
        }
        if self.with_payment_intent:
            params["payment_intent_metadata"] = metadata
        else:
            params["metadata"] = metadata
        return params


PAYMENTS: tuple[DemoPayment, ...] = (
    # Two logistical orders of 84.72 each, authorised on a PaymentIntent, captured after PA01.
    DemoPayment("1001", "DEMO-1001", 169_44, captured=False, with_payment_intent=True),
    DemoPayment("1002", "DEMO-1002", 84_72),
    DemoPayment("1003", "DEMO-1003", 84_72),
    DemoPayment("1004", "DEMO-1004", 18_14),  # only the accepted line was charged
    DemoPayment("1005", "DEMO-1005", 84_72, currency="usd"),  # wrong currency
    DemoPayment("1006", "DEMO-1006", 50_00),  # 34.72 paid with a voucher
    DemoPayment("2001", "DEMO-2001", 18_14),
    DemoPayment("2002", "DEMO-2002", 18_14),
)


def shops() -> list[dict[str, Any]]:
    """Four open shops; shop 4's seller never finishes onboarding."""
    return [
        make_shop(1, shop_name="Green Garden", is_professional=True),
        make_shop(2, shop_name="Blue Books"),
        make_shop(3, shop_name="Red Records"),
        make_shop(4, shop_name="Slow Starter"),
    ]


def product_orders(charge_ids: Mapping[str, str]) -> list[dict[str, Any]]:
    """OR11 orders; ``charge_ids`` maps a payment key of :data:`PAYMENTS` to its charge id."""

    def paid(order_id: str, shop_id: int, key: str, **kw: Any) -> dict[str, Any]:
        return make_product_order(
            order_id, shop_id=shop_id, transaction_number=charge_ids[key], **kw
        )

    return [
        make_product_order(
            "DEMO-1001-A", shop_id=1, state="WAITING_DEBIT_PAYMENT", created_date=_at(5, 9)
        ),
        make_product_order(
            "DEMO-1001-B", shop_id=2, state="WAITING_DEBIT_PAYMENT", created_date=_at(5, 9, 1)
        ),
        paid("DEMO-1002-A", 1, "1002", state="SHIPPING", created_date=_at(4, 12)),
        paid(
            "DEMO-1003-A",
            2,
            "1003",
            state="CLOSED",
            created_date=_at(3, 15),
            refunds=[make_refund_line("5001", amount="12.34", commission_total_amount="1.23")],
        ),
        paid(
            "DEMO-1004-A",
            3,
            "1004",
            state="CLOSED",
            created_date=_at(3, 16),
            lines=[
                make_order_line(
                    "DEMO-1004-A-1", "12.34", "CLOSED", LINE1_SHIPPING_TAXES, LINE1_TAXES
                ),
                make_order_line(
                    "DEMO-1004-A-2", "56.78", "REFUSED", LINE2_SHIPPING_TAXES, LINE2_TAXES
                ),
            ],
        ),
        paid("DEMO-1005-A", 1, "1005", state="SHIPPING", created_date=_at(6, 10)),
        paid("DEMO-1006-A", 3, "1006", state="SHIPPING", created_date=_at(6, 11)),
        make_product_order("DEMO-1008-A", shop_id=2, state="CANCELED", created_date=_at(6, 12)),
    ]


def service_orders() -> list[dict[str, Any]]:
    """SOR11 orders: one accepted, one closed with a refund waiting for payment."""
    return [
        make_service_order("DEMO-2001-A", shop_id=1, created_date="2024-01-04T10:00:00.000Z"),
        make_service_order(
            "DEMO-2002-A",
            shop_id=2,
            state="ORDER_CLOSED",
            created_date="2024-01-04T11:00:00.000Z",
            refunds=[make_service_refund("6001", amount="12.34", commission="1.23")],
        ),
    ]


def service_debits(charge_ids: Mapping[str, str]) -> list[dict[str, Any]]:
    """SPA11 debits of the service orders, paid with the demo charges."""
    return [
        make_service_debit("DEMO-2001-A", amount="18.14", transaction_number=charge_ids["2001"]),
        make_service_debit("DEMO-2002-A", amount="18.14", transaction_number=charge_ids["2002"]),
    ]


def invoices() -> list[dict[str, Any]]:
    """IV01 invoices of January, one per shop."""
    end = "2024-01-31T23:00:0%dZ"
    return [
        make_invoice(1, 1, end % 1, "120.00", "-9.99", "15.00", "-20.00"),
        make_invoice(2, 2, end % 2, "150.00", "-9.99", "5.00", "-12.50"),
        make_invoice(3, 3, end % 3, "900.00", "-9.99", "5.00", "-4.00"),
        make_invoice(4, 4, end % 4, "40.00", "-9.99", "2.00", "-1.00"),
    ]


def mirakl_dataset(charge_ids: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every Mirakl collection, keyed like the control API (``add_<key>``)."""
    return {
        "shops": shops(),
        "orders": product_orders(charge_ids),
        "service_orders": service_orders(),
        "service_debits": service_debits(charge_ids),
        "invoices": invoices(),
    }


def _at(day: int, hour: int, second: int = 0) -> str:
    return f"2024-01-{day:02d}T{hour:02d}:00:{second:02d}Z"
