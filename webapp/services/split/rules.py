"""Payment split (docs/split.md): each seller's share of each Mirakl order, paid exactly once.

This module holds the pure evaluation: ``evaluate_order_transfer`` decides a transfer row's
status, amount and reason from plain facts (the parsed order, the shop's account, the service
debit, the payment as Stripe described it, the tax-split settings), plus the fact dataclasses,
settings and reason texts. ``split/sync.py`` holds the orchestration (gathers those facts through
the Mirakl client and the Stripe gateway, writes rows through ``transitions``);
``ledger/transfer_job.py`` holds the money job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from webapp.models import (
    TransferStatus,
    TransferType,
)
from webapp.services.ledger.minor_units import MAX_AMOUNT, to_minor
from webapp.services.mirakl import orders
from webapp.services.mirakl.types import ProductOrder, ServiceDebit, ServiceOrder

log = logging.getLogger(__name__)

ACTOR = "process-transfer"
CHUNK = 100  # orders per database transaction (and per SPA11 call)
RETRIABLE = frozenset({TransferStatus.ON_HOLD, TransferStatus.FAILED})
CHECKPOINT_KEYS = {
    TransferType.PRODUCT_ORDER: "product_payment_split_checkpoint",
    TransferType.SERVICE_ORDER: "service_payment_split_checkpoint",
}
STRIPE_PAYMENT_PREFIXES = ("pi_", "ch_", "py_")
FINAL_LOOKUP_ERRORS = frozenset({400, 404})  # Stripe "no such payment": the reference aborts

# The reference's reasons (StripeTransfer::TRANSFER_STATUS_REASON_*), kept word for word.
SHOP_NOT_READY = "Cannot find Stripe account for shop ID %s"
ORDER_NOT_READY = "Order is not ready yet, status is %s"
PAYMENT_NOT_READY = "Payment %s is not ready yet, status is %s"
ACCOUNT_NOT_FOUND = "Cannot find Stripe account for ID %s"
ORDER_ABORTED = "Order cannot be processed, status is %s"
INVALID_AMOUNT = "Amount must be positive, input was: %d"
AMOUNT_TOO_LARGE = "Amount is too large, input was: %d"  # ours: the reference overflows
PAYMENT_FAILED = "Payment %s failed"
PAYMENT_CANCELED = "Payment %s has been canceled"
NO_SHOP_ID = "No shop ID provided"
NO_ACCOUNT_ID = "No stripe account ID provided"
SHOP_IGNORED = "Shop %s is ignored"
# Ours: cases the reference crashes on, pays wrongly or never reports.
TAX_SPLIT_DISABLED = "Tax split is disabled (ENABLE_PAYMENT_TAX_SPLIT is false)"
PAYMENT_NOT_CHECKED = "Payment %s has not been checked in Stripe yet"
PAYMENT_UNCHECKABLE = "Payment %s could not be checked in Stripe: %s"
CURRENCY_MISMATCH = "Order currency %s differs from the currency of payment %s (%s)"
ORDER_NOT_RETURNED = "Order %s was not returned by Mirakl"
ORDER_UNREADABLE = "Order %s could not be read from Mirakl: %s"

Order = ProductOrder | ServiceOrder


# ================================================================ pure evaluation


@dataclass(frozen=True)
class AccountFacts:
    """What evaluation needs of an AccountMapping row."""

    id: int
    mirakl_shop_id: int
    stripe_account_id: str
    ignored: bool = False


@dataclass(frozen=True)
class TaxSplit:
    """``ENABLE_PAYMENT_TAX_SPLIT`` and ``STRIPE_TAX_ACCOUNT``."""

    enabled: bool = False
    account_id: str = ""


NO_TAX_SPLIT = TaxSplit()


@dataclass(frozen=True)
class ChargeFacts:
    id: str
    status: str
    captured: bool
    refunded: bool
    currency: str


@dataclass(frozen=True)
class PaymentFacts:
    """A charge or PaymentIntent as Stripe described it, or why Stripe could not.

    ``error`` is Stripe's message when it refused the look-up (no such payment: final);
    ``unavailable`` when it could not answer (try again on the next run).
    """

    payment_id: str
    status: str = ""
    charge: ChargeFacts | None = None
    error: str | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation. ``needs_payment`` names a payment to look up in
    Stripe before the evaluation can go past step 7 (the row stays ON_HOLD meanwhile)."""

    status: TransferStatus
    reason: str | None = None
    amount: int | None = None
    currency: str | None = None
    transaction_id: str | None = None
    needs_payment: str | None = None


def charge_facts(charge: dict[str, Any]) -> ChargeFacts:
    """The fields of a Stripe charge that decide whether it can fund a transfer."""
    return ChargeFacts(
        id=str(charge.get("id") or ""),
        status=str(charge.get("status") or ""),
        captured=bool(charge.get("captured")),
        refunded=bool(charge.get("refunded")),
        currency=str(charge.get("currency") or "").lower(),
    )


def payment_facts(payment: dict[str, Any], charge: dict[str, Any] | None = None) -> PaymentFacts:
    """Facts of a retrieved charge, or of a PaymentIntent and its (succeeded) charge."""
    if str(payment.get("id", "")).startswith("pi_"):
        return PaymentFacts(
            payment_id=payment["id"],
            status=str(payment.get("status") or ""),
            charge=charge_facts(charge) if charge else None,
        )
    facts = charge_facts(payment)
    return PaymentFacts(payment_id=facts.id, status=facts.status, charge=facts)


def payment_reference(order: Order, debit: ServiceDebit | None) -> str:
    """The payment id Mirakl holds for the order (PA01/SPA11 ``transaction_number``)."""
    if isinstance(order, ProductOrder):
        return order.transaction_number
    return debit.transaction_number if debit else ""


def is_payment_confirmed(order: Order, debit: ServiceDebit | None) -> bool:
    """Product: Mirakl recorded the customer debit. Service: its SPA11 debit is ``OK``."""
    if isinstance(order, ProductOrder):
        return orders.is_paid(order)
    return debit is not None and debit.is_paid


def transfer_amount(order: Order, *, is_tax: bool, tax_split: bool) -> int:
    """Minor units to transfer: amount due − commission (− product taxes under tax split);
    the ``_TAX`` twin gets the order's taxes."""
    taxes = orders.order_tax_total(order)
    if is_tax:
        return to_minor(taxes, order.currency)
    value = orders.amount_due(order) - orders.commission(order)
    if tax_split:
        value -= taxes
    return to_minor(value, order.currency)


def _source_problem(payment: PaymentFacts, currency: str) -> Decision | None:
    """Why this payment cannot (yet) fund the transfer; None when it can (step 7)."""
    hold, abort = TransferStatus.ON_HOLD, TransferStatus.ABORTED
    if payment.error:
        return Decision(abort, payment.error, currency=currency)
    if payment.unavailable:
        return Decision(
            hold, PAYMENT_UNCHECKABLE % (payment.payment_id, payment.unavailable), currency=currency
        )
    if payment.payment_id.startswith("pi_"):
        if payment.status == "canceled":
            return Decision(abort, PAYMENT_CANCELED % payment.payment_id, currency=currency)
        if payment.status != "succeeded":
            reason = PAYMENT_NOT_READY % (payment.payment_id, payment.status)
            return Decision(hold, reason, currency=currency)
    charge = payment.charge
    if charge is None:
        return None
    if charge.status == "succeeded":
        if not charge.captured:
            reason = PAYMENT_NOT_READY % (charge.id, "succeeded (not captured)")
            return Decision(hold, reason, currency=currency)
        if charge.refunded:
            return Decision(abort, PAYMENT_CANCELED % charge.id, currency=currency)
    elif charge.status == "failed":
        return Decision(abort, PAYMENT_FAILED % charge.id, currency=currency)
    else:
        return Decision(hold, PAYMENT_NOT_READY % (charge.id, charge.status), currency=currency)
    if charge.currency != currency:
        reason = CURRENCY_MISMATCH % (currency.upper(), charge.id, charge.currency.upper())
        return Decision(hold, reason, currency=currency)
    return None


def evaluate_order_transfer(
    order: Order,
    account: AccountFacts | None,
    *,
    is_tax: bool = False,
    tax: TaxSplit = NO_TAX_SPLIT,
    tax_account: AccountFacts | None = None,
    debit: ServiceDebit | None = None,
    transfer_id: str | None = None,
    transaction_id: str | None = None,
    mapped_charge_id: str | None = None,
    payment: PaymentFacts | None = None,
) -> Decision:
    """Decide an order transfer's status, amount and reason (docs/split.md, in order).

    1. A Stripe transfer already exists (``transfer_id``) → CREATED, reason cleared.
    2. Accounts → ON_HOLD: a ``_TAX`` twin while tax split is off (ours); no shop id
       (``No shop ID provided``); shop not mapped (``Cannot find Stripe account for shop ID
       %s``); for the ``_TAX`` twin, no tax account id (``No stripe account ID provided``)
       or tax account not mapped (``Cannot find Stripe account for ID %s``).
    3. Shop ignored → IGNORED ``Shop %s is ignored`` (the ``_TAX`` twin too).
    4. Order refused/cancelled → ABORTED ``Order cannot be processed, status is %s``.
    5. Order not validated → ON_HOLD ``Order is not ready yet, status is %s``.
    6. Customer not debited (product: ``customer_debited_date``; service: SPA11 debit ``OK``)
       → ON_HOLD, same text.
    7. Source transaction, unless already stored: the payment id from Mirakl, else the
       payment mapping of the commercial order. A ``pi_``/``ch_``/``py_`` id must be looked
       up (``needs_payment``) then: Stripe refused the look-up → ABORTED with its message;
       PaymentIntent canceled → ABORTED ``Payment %s has been canceled``, not succeeded →
       ON_HOLD ``Payment %s is not ready yet, status is %s``; charge not captured → ON_HOLD
       (``… status is succeeded (not captured)``), refunded → ABORTED (canceled text),
       failed → ABORTED ``Payment %s failed``, other → ON_HOLD; charge currency differs from
       the order's → ON_HOLD (ours). Any other id, or none → no source transaction.
    8. Amount (minor units, zero-decimal aware) ≤ 0 → ABORTED ``Amount must be positive,
       input was: %d``; above ``MAX_AMOUNT`` (garbage from Mirakl) → ON_HOLD ``Amount is
       too large, input was: %d`` (ours), amount not stored.
    9. Otherwise PENDING with amount, currency and source transaction; reason cleared.
    """
    currency = order.currency
    hold = TransferStatus.ON_HOLD

    def held(reason: str) -> Decision:
        return Decision(hold, reason, currency=currency)

    if transfer_id:  # 1
        return Decision(TransferStatus.CREATED, None, currency=currency)
    if is_tax and not tax.enabled:  # 2
        return held(TAX_SPLIT_DISABLED)
    if not order.shop_id:
        return held(NO_SHOP_ID)
    if account is None:
        return held(SHOP_NOT_READY % order.shop_id)
    if is_tax and not tax.account_id:
        return held(NO_ACCOUNT_ID)
    if is_tax and tax_account is None:
        return held(ACCOUNT_NOT_FOUND % tax.account_id)
    if account.ignored:  # 3
        return Decision(
            TransferStatus.IGNORED, SHOP_IGNORED % account.mirakl_shop_id, currency=currency
        )
    if orders.is_aborted(order):  # 4
        return Decision(TransferStatus.ABORTED, ORDER_ABORTED % order.state, currency=currency)
    if not orders.is_validated(order):  # 5
        return held(ORDER_NOT_READY % order.state)
    if not is_payment_confirmed(order, debit):  # 6
        return held(ORDER_NOT_READY % order.state)
    source = transaction_id  # 7
    if not source:
        reference = payment_reference(order, debit) or mapped_charge_id or ""
        if reference.startswith(STRIPE_PAYMENT_PREFIXES):
            if payment is None or payment.payment_id != reference:
                reason = PAYMENT_NOT_CHECKED % reference
                return Decision(hold, reason, currency=currency, needs_payment=reference)
            problem = _source_problem(payment, currency)
            if problem is not None:
                return problem
            source = payment.charge.id if payment.charge else None
    amount = transfer_amount(order, is_tax=is_tax, tax_split=tax.enabled)  # 8
    if amount <= 0:
        return Decision(
            TransferStatus.ABORTED, INVALID_AMOUNT % amount, amount=amount, currency=currency
        )
    if amount > MAX_AMOUNT:
        return held(AMOUNT_TOO_LARGE % amount)
    return Decision(
        TransferStatus.PENDING, None, amount=amount, currency=currency, transaction_id=source
    )  # 9
