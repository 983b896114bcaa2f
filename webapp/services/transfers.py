"""Payment split (reference §4): each seller's share of each Mirakl order, paid exactly once.

Pure evaluation on top: ``evaluate_order_transfer`` decides a transfer row's status, amount
and reason from plain facts (the parsed order, the shop's account, the service debit, the
payment as Stripe described it, the tax-split settings). Orchestration below gathers those
facts through the Mirakl client and the Stripe gateway, writes rows through ``transitions``
and leaves the Stripe transfers themselves to ``transfer_execution`` (one money job per row).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.extensions import db
from webapp.models import (
    ORDER_TRANSFER_TYPES,
    AccountMapping,
    PaymentMapping,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services import checkpoints, orders, transitions
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.mirakl import TAX_SUFFIX, MiraklClient, strip_tax_suffix
from webapp.services.mirakl_types import BadItem, ProductOrder, ServiceDebit, ServiceOrder
from webapp.services.money import to_minor
from webapp.services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

T = TransferStatus
ACTOR = "process-transfer"
CHUNK = 100  # orders per database transaction (and per SPA11 call)
RETRIABLE = frozenset({T.ON_HOLD.value, T.FAILED.value})
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
    hold, abort = T.ON_HOLD, T.ABORTED
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
    """Decide an order transfer's status, amount and reason (reference §4.2, in order).

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
       input was: %d``.
    9. Otherwise PENDING with amount, currency and source transaction; reason cleared.
    """
    currency = order.currency
    hold = T.ON_HOLD

    def held(reason: str) -> Decision:
        return Decision(hold, reason, currency=currency)

    if transfer_id:  # 1
        return Decision(T.CREATED, None, currency=currency)
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
        return Decision(T.IGNORED, SHOP_IGNORED % account.mirakl_shop_id, currency=currency)
    if orders.is_aborted(order):  # 4
        return Decision(T.ABORTED, ORDER_ABORTED % order.state, currency=currency)
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
        return Decision(T.ABORTED, INVALID_AMOUNT % amount, amount=amount, currency=currency)
    return Decision(T.PENDING, None, amount=amount, currency=currency, transaction_id=source)  # 9


# ================================================================ orchestration


def fetch_payment(gateway: StripeGateway, payment_id: str) -> PaymentFacts:
    """Look a charge or PaymentIntent up in Stripe; failures become facts, never raise."""
    try:
        if not payment_id.startswith("pi_"):
            return payment_facts(gateway.retrieve_charge(payment_id))
        intent = gateway.retrieve_payment_intent(payment_id)
        charge = None
        if intent.get("status") == "succeeded":
            charges = (intent.get("charges") or {}).get("data") or []
            latest = intent.get("latest_charge")
            if charges:
                charge = charges[0]
            elif isinstance(latest, dict):
                charge = latest
            elif isinstance(latest, str) and latest:
                charge = gateway.retrieve_charge(latest)
        return payment_facts(intent, charge)
    except StripeRefused as exc:
        if exc.http_status in FINAL_LOOKUP_ERRORS:
            return PaymentFacts(payment_id, error=exc.message)
        return PaymentFacts(payment_id, unavailable=exc.message)
    except StripeOutcomeUnknown as exc:
        return PaymentFacts(payment_id, unavailable=exc.message)


def _chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _label(status: str) -> str:
    """``TRANSFER_ON_HOLD`` → ``on hold`` for summary lines."""
    return status.removeprefix("TRANSFER_").lower().replace("_", " ")


def _facts(row: AccountMapping) -> AccountFacts:
    return AccountFacts(row.id, row.mirakl_shop_id, row.stripe_account_id, bool(row.ignored))


class _Run:
    """One evaluation pass over orders of one type: settings, caches and counts."""

    def __init__(self, transfer_type: TransferType, actor: str) -> None:
        cfg = current_app.config
        self.type = transfer_type
        self.actor = actor
        self.mirakl: MiraklClient = get_mirakl()
        self.tax = TaxSplit(bool(cfg["ENABLE_PAYMENT_TAX_SPLIT"]), cfg["STRIPE_TAX_ACCOUNT"] or "")
        self.tax_account: AccountFacts | None = None
        if self.tax.account_id:
            found = db.session.execute(
                select(AccountMapping).where(
                    AccountMapping.stripe_account_id == self.tax.account_id
                )
            ).scalar_one_or_none()
            self.tax_account = _facts(found) if found else None
        self.accounts: dict[int, AccountFacts] = {}
        self.mapped_charges: dict[str, str] = {}
        self.payments: dict[str, PaymentFacts] = {}
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------ gathering

    def list_by_id(self, order_ids: Sequence[str]) -> Iterator[Order | BadItem]:
        if self.type == TransferType.PRODUCT_ORDER:
            return self.mirakl.list_orders_by_id(order_ids)
        return self.mirakl.list_service_orders_by_id(order_ids)

    def debits(self, order_ids: Sequence[str]) -> dict[str, ServiceDebit]:
        """SPA11 debits of these service orders (one call per 100 ids)."""
        if self.type != TransferType.SERVICE_ORDER or not order_ids:
            return {}
        found: dict[str, ServiceDebit] = {}
        for debit in self.mirakl.list_service_debits(order_ids):
            if isinstance(debit, BadItem):
                log.warning("service debit %s: unreadable: %s", debit.mirakl_id, debit.reason)
            else:
                found[debit.order_id] = debit
        return found

    def prefetch(self, items: Sequence[Order | BadItem]) -> None:
        """Load the accounts and payment mappings of a chunk of orders in two queries."""
        parsed = [i for i in items if not isinstance(i, BadItem)]
        shops = {o.shop_id for o in parsed if o.shop_id} - set(self.accounts)
        if shops:
            for row in db.session.execute(
                select(AccountMapping).where(AccountMapping.mirakl_shop_id.in_(shops))
            ).scalars():
                self.accounts[row.mirakl_shop_id] = _facts(row)
        commercial = {o.commercial_id for o in parsed if o.commercial_id}
        if commercial:
            # Several charges for one commercial order: the latest mapping wins (reference).
            for commercial_id, charge_id in db.session.execute(
                select(PaymentMapping.mirakl_commercial_order_id, PaymentMapping.stripe_charge_id)
                .where(PaymentMapping.mirakl_commercial_order_id.in_(commercial))
                .order_by(PaymentMapping.id)
            ):
                self.mapped_charges[commercial_id] = charge_id

    def existing(self, order_ids: Sequence[str]) -> dict[str, StripeTransfer]:
        """Rows of these orders (and of their ``_TAX`` twins), by Mirakl id."""
        ids = list(order_ids) + [f"{i}{TAX_SUFFIX}" for i in order_ids]
        rows = db.session.execute(
            select(StripeTransfer).where(
                StripeTransfer.type == self.type.value, StripeTransfer.mirakl_id.in_(ids)
            )
        ).scalars()
        return {row.mirakl_id: row for row in rows}

    def payment(self, payment_id: str) -> PaymentFacts:
        if payment_id not in self.payments:
            self.payments[payment_id] = fetch_payment(get_stripe(), payment_id)
        return self.payments[payment_id]

    # ------------------------------------------------------------ deciding and recording

    def evaluate(
        self, order: Order, debit: ServiceDebit | None, row: StripeTransfer | None, is_tax: bool
    ) -> Decision:
        facts: dict[str, Any] = {
            "is_tax": is_tax,
            "tax": self.tax,
            "tax_account": self.tax_account,
            "debit": debit,
            "transfer_id": row.transfer_id if row else None,
            "transaction_id": row.transaction_id if row else None,
            "mapped_charge_id": self.mapped_charges.get(order.commercial_id),
        }
        account = self.accounts.get(order.shop_id) if order.shop_id else None
        decision = evaluate_order_transfer(order, account, **facts)
        if decision.needs_payment:
            payment = self.payment(decision.needs_payment)
            decision = evaluate_order_transfer(order, account, payment=payment, **facts)
        return decision

    def record(
        self,
        row: StripeTransfer | None,
        mirakl_id: str,
        decision: Decision,
        fields: dict[str, Any],
    ) -> StripeTransfer:
        """Create the row with the decided status, or move it there (compare-and-set)."""
        if decision.amount is not None:
            fields["amount"] = decision.amount
        if decision.currency:
            fields["currency"] = decision.currency
        if decision.transaction_id:
            fields["transaction_id"] = decision.transaction_id
        self.counts[_label(decision.status.value)] += 1
        if row is None:
            row = StripeTransfer(type=self.type.value, mirakl_id=mirakl_id, **fields)
            transitions.create(row, decision.status, decision.reason, actor=self.actor)
            return row
        changed = {k: v for k, v in fields.items() if getattr(row, k) != v}
        reason = transitions.truncate_reason(decision.reason)
        if changed or row.status != decision.status.value or row.status_reason != reason:
            transitions.transition(
                row, decision.status, decision.reason, actor=self.actor, **changed
            )
        return row

    def settle(
        self,
        item: Order | BadItem | None,
        order_id: str,
        rows: dict[str, StripeTransfer],
        debit: ServiceDebit | None,
        may_update: Callable[[StripeTransfer], bool],
    ) -> bool:
        """Create or re-evaluate the order's row and its ``_TAX`` twin; True when stored."""
        seller, tax_id = rows.get(order_id), f"{order_id}{TAX_SUFFIX}"
        twin = rows.get(tax_id)
        if item is None or isinstance(item, BadItem):
            reason = (
                ORDER_NOT_RETURNED % order_id
                if item is None
                else ORDER_UNREADABLE % (order_id, item.reason)
            )
            for row in (seller, twin):
                if row is not None and may_update(row):
                    self.record(row, row.mirakl_id, Decision(T.ON_HOLD, reason), {})
            if seller is None and item is not None:
                self.record(None, order_id, Decision(T.ON_HOLD, reason), {})
            return item is not None or seller is not None
        fields = {
            "mirakl_shop_id": item.shop_id,
            "transfer_group": item.commercial_id or None,
            "mirakl_created_date": item.created_date,
        }
        is_seller_open = seller is None or seller.status in RETRIABLE | {T.PENDING.value}
        if seller is None or may_update(seller):
            decision = self.evaluate(item, debit, seller, is_tax=False)
            account = self.accounts.get(item.shop_id) if item.shop_id else None
            mapping = {"account_mapping_id": account.id if account else None}
            self.record(seller, order_id, decision, {**fields, **mapping})
        else:
            self.counts["already known"] += 1
        # A missing twin is only created next to a seller row that is not settled yet: a
        # seller already paid in full (before tax split was enabled) must not be taxed twice.
        if (twin is None and self.tax.enabled and is_seller_open) or (
            twin is not None and may_update(twin)
        ):
            decision = self.evaluate(item, debit, twin, is_tax=True)
            mapping = {"account_mapping_id": self.tax_account.id if self.tax_account else None}
            self.record(twin, tax_id, decision, {**fields, **mapping})
        return True

    def has_work(
        self, order_id: str, rows: dict[str, StripeTransfer], may_update: Callable
    ) -> bool:
        """Whether settling this order would create or re-evaluate a row."""
        seller, twin = rows.get(order_id), rows.get(f"{order_id}{TAX_SUFFIX}")
        if seller is None or may_update(seller) or (twin is not None and may_update(twin)):
            return True
        is_seller_open = seller.status in RETRIABLE | {T.PENDING.value}
        return twin is None and self.tax.enabled and is_seller_open

    def settle_chunk(
        self,
        items: Sequence[Order | BadItem | None],
        order_ids: Sequence[str],
        may_update: Callable[[StripeTransfer], bool],
    ) -> list[bool]:
        """Settle a chunk of orders, each in its own savepoint; commit; return what was
        stored, order by order."""
        parsed = [i for i in items if i is not None]
        self.prefetch(parsed)
        rows = self.existing(order_ids)
        debits = self.debits(
            [
                order_id
                for order_id, item in zip(order_ids, items, strict=True)
                if item is not None and self.has_work(order_id, rows, may_update)
            ]
        )
        stored: list[bool] = []
        for order_id, item in zip(order_ids, items, strict=True):
            try:
                with db.session.begin_nested():
                    debit = debits.get(order_id)
                    stored.append(self.settle(item, order_id, rows, debit, may_update))
            except Exception:  # noqa: BLE001 - per-item boundary: the next run retries it
                log.exception("order %s (%s): could not be evaluated", order_id, self.type.value)
                self.counts["errors"] += 1
                stored.append(False)
        db.session.commit()
        return stored

    def reevaluate(self, rows: Sequence[StripeTransfer], may_update: Callable) -> None:
        """Fetch the rows' orders by id (100 per call) and re-evaluate the rows."""
        order_ids = sorted({strip_tax_suffix(row.mirakl_id) for row in rows})
        for chunk in _chunks(order_ids):
            found: dict[str, Order | BadItem] = {}
            for item in self.list_by_id(chunk):
                key = item.mirakl_id if isinstance(item, BadItem) else item.id
                if key:
                    found[key] = item
            self.settle_chunk([found.get(i) for i in chunk], chunk, may_update)


def _never(row: StripeTransfer) -> bool:
    return False


def _is_retriable(row: StripeTransfer) -> bool:
    return row.status in RETRIABLE


def _sync_new(transfer_type: TransferType) -> Counter[str]:
    """New orders since the checkpoint → rows; the checkpoint never passes an order that
    was not stored (a run that dies mid-way redoes its window next time)."""
    run = _Run(transfer_type, ACTOR)
    key = CHECKPOINT_KEYS[transfer_type]
    since = checkpoints.get_checkpoint(key)
    db.session.commit()
    if transfer_type == TransferType.PRODUCT_ORDER:
        listing: Iterable[Order | BadItem] = run.mirakl.list_orders(start_date=since)
    else:
        listing = run.mirakl.list_service_orders(date_created_start=since)
    newest: tuple[datetime, str] | None = None
    blocked: tuple[datetime, str] | None = None  # earliest order that could not be stored
    for chunk in _chunks(listing):
        run.counts["fetched"] += len(chunk)
        usable = [i for i in chunk if not isinstance(i, BadItem) or i.mirakl_id]
        for bad in (i for i in chunk if isinstance(i, BadItem) and not i.mirakl_id):
            run.counts["unreadable"] += 1
            log.warning("%s: unreadable order without id: %s", bad.code, bad.reason)
        ids = [i.mirakl_id if isinstance(i, BadItem) else i.id for i in usable]
        stored = run.settle_chunk(usable, ids, _never)
        for item, is_stored in zip(usable, stored, strict=True):
            if isinstance(item, BadItem) or item.created_date is None:
                continue
            mark = (item.created_date, item.created_raw)
            if is_stored:
                newest = mark if newest is None or mark[0] > newest[0] else newest
            else:
                blocked = mark if blocked is None or mark[0] < blocked[0] else blocked
    new = blocked or newest
    if new is not None and new[1] != since:
        checkpoints.set_checkpoint(key, new[1])
        db.session.commit()
    return run.counts


def sync_product_orders() -> Counter[str]:
    """OR11 product orders created since the checkpoint → transfer rows; counts by outcome."""
    return _sync_new(TransferType.PRODUCT_ORDER)


def sync_service_orders() -> Counter[str]:
    """SOR11 service orders (with their SPA11 debits) since the checkpoint → transfer rows."""
    return _sync_new(TransferType.SERVICE_ORDER)


def sync_backlog(transfer_type: TransferType | str) -> Counter[str]:
    """Re-evaluate the ON_HOLD and FAILED transfers of one order type; counts by outcome.

    Orders are fetched by id, 100 per call; an order Mirakl no longer returns puts its rows
    ON_HOLD with a reason instead of ending the run; ``_TAX`` rows map to their order.
    """
    kind = TransferType(transfer_type)
    run = _Run(kind, ACTOR)
    rows = list(
        db.session.execute(
            select(StripeTransfer)
            .where(StripeTransfer.type == kind.value, StripeTransfer.status.in_(RETRIABLE))
            .order_by(StripeTransfer.id)
        ).scalars()
    )
    if rows:
        run.counts["retriable"] = len(rows)
    run.reevaluate(rows, _is_retriable)
    return run.counts


def retry_transfers(ids: Sequence[int], *, actor: str) -> list[int]:
    """Re-evaluate the given FAILED/ON_HOLD order transfers; return the ids now PENDING.

    Other rows (CREATED, ABORTED, invoice or refund transfers) are left alone. The caller
    dispatches the returned ids (operation ``transfer``).
    """
    wanted = set(ids)
    rows = list(
        db.session.execute(
            select(StripeTransfer).where(
                StripeTransfer.id.in_(wanted),
                StripeTransfer.type.in_([t.value for t in ORDER_TRANSFER_TYPES]),
                StripeTransfer.status.in_(RETRIABLE),
            )
        ).scalars()
    )
    for kind in ORDER_TRANSFER_TYPES:
        subset = [row for row in rows if row.type == kind.value]
        if subset:
            _Run(kind, actor).reevaluate(
                subset, lambda row: row.id in wanted and row.status in RETRIABLE
            )
    return list(
        db.session.execute(
            select(StripeTransfer.id)
            .where(StripeTransfer.id.in_(wanted), StripeTransfer.status == T.PENDING.value)
            .order_by(StripeTransfer.id)
        ).scalars()
    )


def count_statuses(ids: Sequence[int]) -> dict[str, int]:
    """How many of these transfer rows are in each status (for the job summary)."""
    if not ids:
        return {}
    db.session.expire_all()
    result = db.session.execute(
        select(StripeTransfer.status, func.count())
        .where(StripeTransfer.id.in_(list(ids)))
        .group_by(StripeTransfer.status)
    )
    return {_label(status): count for status, count in sorted(result.all())}
