"""Payment validation: confirm customer debits to Mirakl (PA01), then capture or cancel.

The reference's behaviour (docs/validation.md), with its defects fixed:

* PA01 ``REFUSED`` when the payment failed or was canceled, so Mirakl stops waiting
  (reference issue #95); a debit whose currency differs from the charge's is not validated
  and the mapping says why.
* Capture and cancel are money jobs (``execute_capture``, operation ``capture``): claimed,
  sent with an idempotency key, recorded. A payment Stripe already captured or canceled is
  reconciled instead of failing forever (reference issue #105).

This module holds the pure evaluation (``choose_payment``, ``evaluate_debits``,
``evaluate_capture``) and its values. Orchestration (``sync_pending_debits``, ``sync_captures``,
``retry_captures``) is in ``validation/sync.py``; the money job ``execute_capture`` in
``validation/money_job.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from webapp.models import PaymentMapping, PaymentMappingStatus
from webapp.services.ledger.minor_units import format_amount, to_minor
from webapp.services.mirakl import orders
from webapp.services.mirakl.types import PendingDebit, ProductOrder, ServiceDebit, ServiceOrder

log = logging.getLogger(__name__)

ACTOR = "validate-pending-debit"
MONEY_ACTOR = "money-job"
OPERATION = "capture"  # the money job's name in webapp.services.dispatch.money_jobs.EXECUTORS
DEBIT_REASON = "Mirakl debit"  # prefix of the reasons this step writes (cleared on success)
QUERY_CHUNK = 500  # commercial ids per SQL IN (...)
OK, REFUSED = "OK", "REFUSED"

Order = ProductOrder | ServiceOrder


class CaptureAction(StrEnum):
    WAIT = "wait"
    CAPTURE = "capture"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Payment:
    """What the rules need to know about a payment mapping."""

    charge_id: str
    commercial_id: str
    status: str
    amount: int | None
    currency: str | None

    @classmethod
    def of(cls, row: PaymentMapping) -> Payment:
        return cls(
            charge_id=row.stripe_charge_id,
            commercial_id=row.mirakl_commercial_order_id or "",
            status=row.status,
            amount=row.stripe_amount,
            currency=(row.currency or "").lower() or None,
        )


@dataclass(frozen=True)
class DebitDecision:
    """The PA01 entries to send for one commercial order, and why some are held back."""

    entries: tuple[dict[str, Any], ...]
    payment_status: str | None  # OK or REFUSED; None when nothing is sent
    reason: str | None  # for the mapping, when a debit is held back


@dataclass(frozen=True)
class CaptureDecision:
    action: CaptureAction
    amount: int  # minor units to capture; 0 for cancel and wait
    reason: str | None


# ---------------------------------------------------------------- pure rules


def choose_payment(candidates: Sequence[Payment]) -> Payment | None:
    """The payment of a commercial order when several charges carry its id.

    A customer whose first card failed pays again: the latest payment that is authorised
    or captured wins; only when there is none does the latest failed or canceled one count.
    """
    live = [
        p
        for p in candidates
        if p.status in (PaymentMappingStatus.TO_CAPTURE, PaymentMappingStatus.CAPTURED)
    ]
    pool = live or list(candidates)
    return pool[-1] if pool else None


def _debit_entry(debit: PendingDebit, payment: Payment, status: str) -> dict[str, Any]:
    return {
        "amount": debit.amount,
        "customer_id": debit.customer_id,
        "order_id": debit.order_id,
        "payment_status": status,
        "transaction_number": payment.charge_id,
    }


def evaluate_debits(debits: Sequence[PendingDebit], payment: Payment) -> DebitDecision:
    """Which PA01 entries to send for the pending debits of one commercial order.

    1. the payment failed or was canceled → REFUSED for every debit (reference: nothing).
    2. a debit whose currency is not the payment's → not sent, the mapping says why.
    3. otherwise → OK with the debit's amount, customer and the charge id.
    """
    if payment.status in (PaymentMappingStatus.FAILED, PaymentMappingStatus.CANCELED):
        entries = tuple(_debit_entry(d, payment, REFUSED) for d in debits)
        return DebitDecision(entries, REFUSED, None)
    entries: list[dict[str, Any]] = []
    held: list[str] = []
    for debit in debits:
        if payment.currency and debit.currency.lower() != payment.currency:
            held.append(
                f"{DEBIT_REASON} of order {debit.order_id} not validated: the order is in "
                f"{debit.currency.upper()} but payment {payment.charge_id} is in "
                f"{payment.currency.upper()}"
            )
            continue
        entries.append(_debit_entry(debit, payment, OK))
    return DebitDecision(tuple(entries), OK if entries else None, "; ".join(held) or None)


def is_debited(order: Order, service_debits: Mapping[str, ServiceDebit]) -> bool:
    """Mirakl recorded the customer debit: product ``customer_debited_date`` (PA01 applied),
    service SPA11 debit ``OK`` (SPA01 applied)."""
    if isinstance(order, ProductOrder):
        return orders.is_paid(order)
    debit = service_debits.get(order.id)
    return debit is not None and debit.is_paid


def evaluate_capture(
    payment: Payment,
    logistical_orders: Sequence[Order],
    unreadable: Sequence[str] = (),
    service_debits: Mapping[str, ServiceDebit] | None = None,
) -> CaptureDecision:
    """Capture, cancel or wait, for one authorised payment (docs/validation.md; service
    orders when ``ENABLE_SERVICE_PAYMENT_VALIDATION`` is on, with their SPA11 ``service_debits``).

    1. an order of the commercial order could not be read → wait.
    2. Mirakl has no order for the commercial order → wait (reference: skipped).
    3. the payment amount is unknown → wait (a mapping without currency, as the reference
       stored them, takes its orders' currency).
    4. an order is in another currency than the payment → wait.
    5. an order is not accepted or refused yet → wait.
    6. an order is neither refused/canceled nor debited (PA01/SPA01 not applied) → wait.
    7. capture = payment amount − refused and canceled amounts; > 0 → capture (what is not
       a Mirakl order, e.g. the operator's own items, stays in it), else → cancel.
    """

    def wait(reason: str) -> CaptureDecision:
        return CaptureDecision(CaptureAction.WAIT, 0, reason)

    if unreadable:
        return wait("; ".join(unreadable))
    if not logistical_orders:
        return wait(f"Commercial order {payment.commercial_id} not found in Mirakl")
    if payment.amount is None:
        return wait(f"Amount of payment {payment.charge_id} is unknown")
    currency = payment.currency or logistical_orders[0].currency.lower()
    for order in logistical_orders:
        if order.currency.lower() != currency:
            return wait(
                f"Order {order.id} is in {order.currency.upper()} but payment "
                f"{payment.charge_id} is in {currency.upper()}"
            )
    for order in logistical_orders:
        if not orders.is_validated(order):
            return wait(f"Order {order.id} is not ready yet, status is {order.state}")
    for order in logistical_orders:
        if not orders.is_aborted(order) and not is_debited(order, service_debits or {}):
            call = "PA01" if isinstance(order, ProductOrder) else "SPA01"
            return wait(f"Order {order.id} is waiting for the customer debit ({call})")
    aborted = sum(to_minor(orders.aborted_amount(o), currency) for o in logistical_orders)
    amount = payment.amount - aborted
    if amount > 0:
        released = (
            f" ({format_amount(aborted, currency)} refused or canceled on Mirakl)"
            if aborted
            else ""
        )
        return CaptureDecision(
            CaptureAction.CAPTURE,
            amount,
            f"To capture: {format_amount(amount, currency)} of "
            f"{format_amount(payment.amount, currency)}{released}",
        )
    return CaptureDecision(
        CaptureAction.CANCEL,
        0,
        f"To cancel: nothing left to capture of {format_amount(payment.amount, currency)} "
        f"({format_amount(aborted, currency)} refused or canceled on Mirakl)",
    )
