"""One evaluation pass over Mirakl orders of one type → StripeTransfer rows (docs/split.md).

``OrderPass`` gathers the facts of a chunk of orders (their shops' accounts, payment
mappings, service debits, the Stripe payments, rows already stored) in a few calls, evaluates
each order with ``transfers.evaluate_order_transfer`` and writes the rows through
``transitions``: new rows of a chunk in one batched INSERT, order by order only when that
fails. ``split/sync.py`` decides which orders a run passes over.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    PaymentMapping,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.chunking import chunked
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger import transitions
from webapp.services.mirakl.client import TAX_SUFFIX, MiraklClient, strip_tax_suffix
from webapp.services.mirakl.types import BadItem, ServiceDebit
from webapp.services.split.rules import (
    CHUNK,
    FINAL_LOOKUP_ERRORS,
    ORDER_NOT_RETURNED,
    ORDER_UNREADABLE,
    RETRIABLE,
    AccountFacts,
    Decision,
    Order,
    PaymentFacts,
    TaxSplit,
    evaluate_order_transfer,
    payment_facts,
)
from webapp.services.stripe.bulk import PaymentListing
from webapp.services.stripe.gateway import StripeGateway

log = logging.getLogger(__name__)

PAYMENT_CACHE = 1000  # payments remembered per run (orders sharing one come close together)


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


def status_label(status: str) -> str:
    """``TRANSFER_ON_HOLD`` → ``on hold`` for summary lines."""
    return status.removeprefix("TRANSFER_").lower().replace("_", " ")


def _facts(row: AccountMapping) -> AccountFacts:
    return AccountFacts(row.id, row.mirakl_shop_id, row.stripe_account_id, bool(row.ignored))


class OrderPass:
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
        self.listing: PaymentListing | None = None  # made when the pass first lists payments
        self.counts: Counter[str] = Counter()
        self.new_rows: list[
            tuple[StripeTransfer, TransferStatus, str | None]
        ] = []  # created at flush_new

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
            select(StripeTransfer)
            .where(StripeTransfer.type == self.type, StripeTransfer.mirakl_id.in_(ids))
            .execution_options(populate_existing=True)
        ).scalars()
        return {row.mirakl_id: row for row in rows}

    def preload_payments(
        self,
        items: Sequence[Order | BadItem | None],
        order_ids: Sequence[str],
        rows: dict[str, StripeTransfer],
        debits: dict[str, ServiceDebit],
        may_update: Callable[[StripeTransfer], bool],
    ) -> None:
        """Read in bulk (list calls) the payments this chunk's evaluations will look up.

        The pass's one ``PaymentListing`` lists them, or remembers them from an earlier
        chunk's listing for at most ``bulk.FRESH_FOR`` seconds: why that is fresh enough to
        decide a transfer is said in ``stripe/bulk.py``. A payment the lists do not return is
        retrieved one by one, as before.
        """
        wanted: set[str] = set()
        created: list[Any] = []
        for order_id, item in zip(order_ids, items, strict=True):
            if item is None or isinstance(item, BadItem):
                continue
            if not self.has_work(order_id, rows, may_update):
                continue
            decision = self.evaluate(item, debits.get(order_id), rows.get(order_id), False, False)
            if decision.needs_payment and decision.needs_payment not in self.payments:
                wanted.add(decision.needs_payment)
                if item.created_date is not None:
                    created.append(item.created_date)
        if not wanted:
            return
        if self.listing is None:
            self.listing = PaymentListing(get_stripe())
        try:
            found = self.listing.read(wanted, created)
        except (StripeRefused, StripeOutcomeUnknown) as exc:
            log.info("%d payments: bulk read failed, read one by one: %s", len(wanted), exc)
            return
        for payment_id, (payment, charge) in found.items():
            self.remember(payment_id, payment_facts(payment, charge))

    def remember(self, payment_id: str, facts: PaymentFacts) -> None:
        """Keep a payment's facts; only the latest ``PAYMENT_CACHE`` stay."""
        if len(self.payments) >= PAYMENT_CACHE:
            del self.payments[next(iter(self.payments))]
        self.payments[payment_id] = facts

    def payment(self, payment_id: str) -> PaymentFacts:
        """The payment's facts, looked up once for the orders (and ``_TAX`` twins) sharing it;
        only the latest ``PAYMENT_CACHE`` are kept, so memory stays flat on long runs."""
        if payment_id not in self.payments:
            self.remember(payment_id, fetch_payment(get_stripe(), payment_id))
        return self.payments[payment_id]

    # ------------------------------------------------------------ deciding and recording

    def evaluate(
        self,
        order: Order,
        debit: ServiceDebit | None,
        row: StripeTransfer | None,
        is_tax: bool,
        with_payment: bool = True,
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
        if decision.needs_payment and with_payment:
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
        """Create the row with the decided status (inserted at ``flush_new``), or move it
        there (compare-and-set)."""
        if decision.amount is not None:
            fields["amount"] = decision.amount
        if decision.currency:
            fields["currency"] = decision.currency
        if decision.transaction_id:
            fields["transaction_id"] = decision.transaction_id
        self.counts[status_label(decision.status)] += 1
        if row is None:
            row = StripeTransfer(type=self.type, mirakl_id=mirakl_id, **fields)
            self.new_rows.append((row, decision.status, decision.reason))
            return row
        changed = {k: v for k, v in fields.items() if getattr(row, k) != v}
        reason = transitions.truncate_reason(decision.reason)
        if changed or row.status != decision.status or row.status_reason != reason:
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
                    self.record(row, row.mirakl_id, Decision(TransferStatus.ON_HOLD, reason), {})
            if seller is None and item is not None:
                rows[order_id] = self.record(
                    None, order_id, Decision(TransferStatus.ON_HOLD, reason), {}
                )
            return item is not None or seller is not None
        fields = {
            "mirakl_shop_id": item.shop_id,
            "transfer_group": item.commercial_id or None,
            "mirakl_created_date": item.created_date,
        }
        is_seller_open = seller is None or seller.status in RETRIABLE | {TransferStatus.PENDING}
        if seller is None or may_update(seller):
            decision = self.evaluate(item, debit, seller, is_tax=False)
            account = self.accounts.get(item.shop_id) if item.shop_id else None
            mapping = {"account_mapping_id": account.id if account else None}
            rows[order_id] = self.record(seller, order_id, decision, {**fields, **mapping})
        else:
            self.counts["already known"] += 1
        # A missing twin is only created next to a seller row that is not settled yet: a
        # seller already paid in full (before tax split was enabled) must not be taxed twice.
        if (twin is None and self.tax.enabled and is_seller_open) or (
            twin is not None and may_update(twin)
        ):
            decision = self.evaluate(item, debit, twin, is_tax=True)
            mapping = {"account_mapping_id": self.tax_account.id if self.tax_account else None}
            rows[tax_id] = self.record(twin, tax_id, decision, {**fields, **mapping})
        return True

    def has_work(
        self, order_id: str, rows: dict[str, StripeTransfer], may_update: Callable
    ) -> bool:
        """Whether settling this order would create or re-evaluate a row."""
        seller, twin = rows.get(order_id), rows.get(f"{order_id}{TAX_SUFFIX}")
        if seller is None or may_update(seller) or (twin is not None and may_update(twin)):
            return True
        is_seller_open = seller.status in RETRIABLE | {TransferStatus.PENDING}
        return twin is None and self.tax.enabled and is_seller_open

    def settle_chunk(
        self,
        items: Sequence[Order | BadItem | None],
        order_ids: Sequence[str],
        may_update: Callable[[StripeTransfer], bool],
    ) -> list[bool]:
        """Settle a chunk of orders in one savepoint, its new rows in one batched INSERT (order
        by order, each in its own savepoint, if that fails); commit; return what was stored,
        order by order."""
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
        self.preload_payments(items, order_ids, rows, debits, may_update)
        counts = self.counts.copy()
        try:
            with db.session.begin_nested():
                stored = [
                    self.settle(item, order_id, rows, debits.get(order_id), may_update)
                    for order_id, item in zip(order_ids, items, strict=True)
                ]
                self.flush_new()
        except Exception:  # noqa: BLE001 - redone order by order below, each on its own
            log.warning("%d orders not stored together; storing them one by one", len(items))
            self.counts, self.new_rows = counts, []
            stored = self.settle_each(items, order_ids, debits, may_update)
        db.session.commit()
        return stored

    def settle_each(
        self,
        items: Sequence[Order | BadItem | None],
        order_ids: Sequence[str],
        debits: dict[str, ServiceDebit],
        may_update: Callable[[StripeTransfer], bool],
    ) -> list[bool]:
        """``settle_chunk``'s slow path: each order in its own savepoint, so one that cannot
        be stored does not hold back the others."""
        rows = self.existing(order_ids)
        stored: list[bool] = []
        for order_id, item in zip(order_ids, items, strict=True):
            try:
                with db.session.begin_nested():
                    debit = debits.get(order_id)
                    stored.append(self.settle(item, order_id, rows, debit, may_update))
                    self.flush_new()
            except Exception:  # noqa: BLE001 - per-item boundary: the next run retries it
                log.exception("order %s (%s): could not be evaluated", order_id, self.type)
                self.counts["errors"] += 1
                self.new_rows = []
                for mirakl_id in (order_id, f"{order_id}{TAX_SUFFIX}"):
                    rows.pop(mirakl_id, None)  # rolled back with the savepoint
                stored.append(False)
        return stored

    def flush_new(self) -> None:
        """Insert the rows created since the last flush, with their history, in one go."""
        if self.new_rows:
            new, self.new_rows = self.new_rows, []
            transitions.create_all(new, actor=self.actor)

    def reevaluate(self, rows: Sequence[StripeTransfer], may_update: Callable) -> None:
        """Fetch the rows' orders by id (100 per call) and re-evaluate the rows."""
        order_ids = sorted({strip_tax_suffix(row.mirakl_id) for row in rows})
        for chunk in chunked(order_ids, CHUNK):
            found: dict[str, Order | BadItem] = {}
            for item in self.list_by_id(chunk):
                key = item.mirakl_id if isinstance(item, BadItem) else item.id
                if key:
                    found[key] = item
            self.settle_chunk([found.get(i) for i in chunk], chunk, may_update)
