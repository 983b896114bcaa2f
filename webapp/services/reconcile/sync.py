"""Reconciliation gathering: page through Stripe and Mirakl, compare with our rows, store.

Memory stays flat in the window size: Stripe lists are read one page (100 objects) at a
time, each page matched against our rows with one ``IN`` query, and the findings of the
page stored before the next one. Which of our rows a page matched is kept as one bit per row
id (``SeenIds``), so after the Stripe pass the rows of the window that no list showed are
looked up one by one (an object created outside the listed range, or gone: missing).

Stripe calls: transfers of the platform (reversals embedded), refunds of the platform, and
per connected account its payouts (and its transfers when it has subscription/extra-invoice
rows in the window), all with ``created`` filters, 100 per call, through the gateway's pacing.
Mirakl calls: PA12/SPA12 (refunds still waiting) and OR11/SOR11 by order id, 100 per call.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import Select, or_, select

from webapp.clock import utcnow
from webapp.errors import StripeRefused
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    PaymentMapping,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferType,
)
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.mirakl.client import TAX_SUFFIX
from webapp.services.mirakl.types import BadItem
from webapp.services.reconcile import facts
from webapp.services.reconcile.findings import record_findings, resolve_unseen
from webapp.services.reconcile.rules import (
    Finding,
    OurRow,
    StripeFact,
    evaluate_hand_reversal,
    evaluate_mirakl_refund,
    evaluate_order_refund,
    evaluate_pair,
)

log = logging.getLogger(__name__)

PAGE = 100  # Stripe objects, rows or Mirakl items compared per step
LIST_MARGIN = timedelta(hours=1)  # Stripe objects are listed this much around the window
MAX_PRINTED = 50  # findings of a run kept for its summary lines

T = TypeVar("T")


def chunks(items: Iterable[T], size: int = PAGE) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items of any iterable (read lazily)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class SeenIds:
    """Which of our row ids a Stripe list showed: one bit per id, so 1/8 byte per row."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def add(self, row_id: int) -> None:
        byte = row_id >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits)))
        self.bits[byte] |= 1 << (row_id & 7)

    def __contains__(self, row_id: int) -> bool:
        byte = row_id >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (row_id & 7)))


@dataclass
class Run:
    """One reconciliation run: its window, what it saw, what it found."""

    since: datetime
    until: datetime
    token: str
    now: datetime = field(default_factory=utcnow)
    examined: Counter = field(default_factory=Counter)  # operation → objects or rows compared
    found: Counter = field(default_factory=Counter)  # class → findings this run
    new: int = 0
    printed: list[Finding] = field(default_factory=list)
    seen_transfers: SeenIds = field(default_factory=SeenIds)
    seen_refunds: SeenIds = field(default_factory=SeenIds)
    seen_payouts: SeenIds = field(default_factory=SeenIds)

    @property
    def list_gte(self) -> int:
        return facts.to_timestamp(self.since - LIST_MARGIN)

    @property
    def list_lte(self) -> int:
        return facts.to_timestamp(self.until + LIST_MARGIN)

    def record(self, findings: Iterable[Finding | None]) -> None:
        """Store one step's findings (Nones are agreements)."""
        kept = [finding for finding in findings if finding is not None]
        for finding in kept:
            self.found[finding.finding_class.value] += 1
            if len(self.printed) < MAX_PRINTED:
                self.printed.append(finding)
        self.new += record_findings(kept, run=self.token, now=self.now)


@dataclass(frozen=True)
class Outcome:
    """What a run did, for the job's summary lines."""

    examined: dict[str, int]
    found: dict[str, int]
    new: int
    resolved: int
    printed: tuple[Finding, ...]
    stripe_calls: int
    mirakl_calls: int


def reconcile(*, since: datetime, until: datetime, token: str) -> Outcome:
    """Compare our rows, Stripe and Mirakl over ``[since, until]``; store the findings."""
    gateway, mirakl = get_stripe(), get_mirakl()
    stripe_before, mirakl_before = gateway.calls, mirakl.calls
    run = Run(since=since, until=until, token=token)
    compare_platform_transfers(run)
    compare_refunds(run)
    compare_seller_accounts(run)
    look_up_unseen_rows(run)
    compare_mirakl_refunds(run)
    compare_order_refunds(run)
    resolved = resolve_unseen(run=token, since=since, until=until, now=run.now)
    return Outcome(
        examined=dict(run.examined),
        found=dict(run.found),
        new=run.new,
        resolved=resolved,
        printed=tuple(run.printed),
        stripe_calls=gateway.calls - stripe_before,
        mirakl_calls=mirakl.calls - mirakl_before,
    )


# ---------------------------------------------------------------- our rows, by batch


# Plain rows, not ORM objects: ORM instances are freed only by the cyclic garbage collector,
# which let a 20,000-row run hold several thousand dead ones at its peak.
TRANSFER_COLUMNS = (
    StripeTransfer.id, StripeTransfer.mirakl_id, StripeTransfer.type, StripeTransfer.status,
    StripeTransfer.transfer_id, StripeTransfer.transaction_id, StripeTransfer.amount,
    StripeTransfer.currency, StripeTransfer.creation_datetime,
    StripeTransfer.modification_datetime, AccountMapping.stripe_account_id,
)  # fmt: skip
REFUND_COLUMNS = (
    StripeRefund.id, StripeRefund.mirakl_refund_id, StripeRefund.status,
    StripeRefund.stripe_refund_id, StripeRefund.amount, StripeRefund.currency,
    StripeRefund.creation_datetime, StripeRefund.modification_datetime,
)  # fmt: skip
PAYOUT_COLUMNS = (
    StripePayout.id, StripePayout.mirakl_invoice_id, StripePayout.status, StripePayout.payout_id,
    StripePayout.amount, StripePayout.currency, StripePayout.creation_datetime,
    StripePayout.modification_datetime, AccountMapping.stripe_account_id,
)  # fmt: skip


def transfer_rows() -> Select:
    """Transfer rows with their account's id, as plain rows."""
    return select(*TRANSFER_COLUMNS).outerjoin(
        AccountMapping, StripeTransfer.account_mapping_id == AccountMapping.id
    )


def refund_rows() -> Select:
    return select(*REFUND_COLUMNS)


def payout_rows() -> Select:
    """Payout rows with their account's id, as plain rows."""
    return select(*PAYOUT_COLUMNS).outerjoin(
        AccountMapping, StripePayout.account_mapping_id == AccountMapping.id
    )


def _transfers_where(*conditions: Any) -> list[Any]:
    return list(db.session.execute(transfer_rows().where(*conditions)).all())


def _by(rows: Iterable[Any], attr: str) -> dict[Any, Any]:
    return {getattr(row, attr): row for row in rows if getattr(row, attr)}


# ---------------------------------------------------------------- Stripe: platform transfers


def compare_platform_transfers(run: Run) -> None:
    """Platform transfers of the window (order and extra-credit transfers), reversals included."""
    listing = get_stripe().list_transfers(created_gte=run.list_gte, created_lte=run.list_lte)
    for page in chunks(listing):
        run.record(_compare_transfer_page(run, page, account=None))


def _compare_transfer_page(
    run: Run, page: Sequence[dict[str, Any]], account: str | None
) -> list[Finding | None]:
    ids = [obj["id"] for obj in page]
    owners = _by(
        _transfers_where(
            StripeTransfer.transfer_id.in_(ids), StripeTransfer.type != TransferType.REFUND.value
        ),
        "transfer_id",
    )
    unowned = [obj for obj in page if obj["id"] not in owners]
    claimants = _claimant_transfers(unowned)
    findings: list[Finding | None] = []
    for obj in page:
        fact = facts.transfer_fact(obj, account)
        owner = owners.get(obj["id"])
        if owner is None and not fact.is_tagged:
            continue  # not the connector's: other business of the platform
        run.examined["transfer"] += 1
        claimant = None
        if owner is None:
            claimant = claimants.get((facts.connector_type(obj), fact.mirakl_id)) or claimants.get(
                (None, fact.mirakl_id)
            )
        else:
            run.seen_transfers.add(owner.id)
        findings.append(
            evaluate_pair(
                facts.transfer_row(owner) if owner else None,
                fact,
                facts.transfer_row(claimant) if claimant else None,
            )
        )
    findings.extend(_compare_reversals(run, page, owners))
    return findings


def _claimant_transfers(unowned: Sequence[dict[str, Any]]) -> dict[tuple, Any]:
    """Rows named by the metadata of unowned transfers, keyed (type, Mirakl id) and
    (None, Mirakl id) for objects whose metadata names no type."""
    mirakl_ids = {str((obj.get("metadata") or {}).get("miraklId")) for obj in unowned}
    mirakl_ids.discard("None")
    if not mirakl_ids:
        return {}
    claimants: dict[tuple, Any] = {}
    for row in _transfers_where(
        StripeTransfer.mirakl_id.in_(sorted(mirakl_ids)),
        StripeTransfer.type != TransferType.REFUND.value,
    ):
        claimants[(row.type, row.mirakl_id)] = row
        claimants.setdefault((None, row.mirakl_id), row)
    return claimants


def _compare_reversals(
    run: Run, page: Sequence[dict[str, Any]], owners: dict[str, Any]
) -> list[Finding | None]:
    """Every reversal of the page's transfers: ours, duplicates and reversals made by hand."""
    reversals: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for transfer in page:
        embedded, has_more = facts.embedded_reversals(transfer)
        if has_more:
            embedded = list(get_stripe().list_all_reversals(transfer["id"]))
        reversals.extend((transfer, reversal) for reversal in embedded)
    if not reversals:
        return []
    ids = [reversal["id"] for _, reversal in reversals]
    rows = _transfers_where(
        StripeTransfer.type == TransferType.REFUND.value,
        or_(
            StripeTransfer.transfer_id.in_(ids),
            StripeTransfer.mirakl_id.in_(
                sorted({str((r.get("metadata") or {}).get("miraklId")) for _, r in reversals})
            ),
        ),
    )
    by_id, by_mirakl = _by(rows, "transfer_id"), _by(rows, "mirakl_id")
    findings: list[Finding | None] = []
    for transfer, reversal in reversals:
        fact = facts.reversal_fact(reversal)
        owner = by_id.get(reversal["id"])
        parent = owners.get(transfer["id"])
        if owner is None and not fact.is_tagged:
            if parent is not None:
                run.examined["reversal"] += 1
                findings.append(evaluate_hand_reversal(facts.transfer_row(parent), fact))
            continue
        run.examined["reversal"] += 1
        if owner is not None:
            run.seen_transfers.add(owner.id)
        claimant = by_mirakl.get(fact.mirakl_id) if owner is None else None
        findings.append(
            evaluate_pair(
                facts.transfer_row(owner) if owner else None,
                fact,
                facts.transfer_row(claimant) if claimant else None,
            )
        )
    return findings


# ---------------------------------------------------------------- Stripe: refunds


def compare_refunds(run: Run) -> None:
    """Platform refunds of the window: ours, duplicates, and refunds by hand of our charges."""
    listing = get_stripe().list_refunds_created(created_gte=run.list_gte, created_lte=run.list_lte)
    for page in chunks(listing):
        run.record(_compare_refund_page(run, page))


def _compare_refund_page(run: Run, page: Sequence[dict[str, Any]]) -> list[Finding | None]:
    ids = [obj["id"] for obj in page]
    mirakl_ids = sorted(
        {str(m) for obj in page if (m := (obj.get("metadata") or {}).get("miraklRefundId"))}
    )
    rows = db.session.execute(
        refund_rows().where(
            or_(
                StripeRefund.stripe_refund_id.in_(ids),
                StripeRefund.mirakl_refund_id.in_(mirakl_ids),
            )
        )
    ).all()
    by_id, by_mirakl = _by(rows, "stripe_refund_id"), _by(rows, "mirakl_refund_id")
    ours = _our_charges([obj.get("charge") for obj in page if obj["id"] not in by_id])
    findings: list[Finding | None] = []
    for obj in page:
        fact = facts.refund_fact(obj)
        owner = by_id.get(obj["id"])
        if owner is None and not fact.is_tagged and obj.get("charge") not in ours:
            continue  # a refund of a charge the connector knows nothing about
        run.examined["refund"] += 1
        if owner is not None:
            run.seen_refunds.add(owner.id)
        claimant = by_mirakl.get(fact.mirakl_id) if owner is None else None
        findings.append(
            evaluate_pair(
                facts.refund_row(owner) if owner else None,
                fact,
                facts.refund_row(claimant) if claimant else None,
            )
        )
    return findings


def _our_charges(charge_ids: Sequence[Any]) -> set[str]:
    """Which of these charges the connector knows (payment mappings, transfers, refunds)."""
    wanted = sorted({str(c) for c in charge_ids if c})
    if not wanted:
        return set()
    known: set[str] = set()
    for column in (
        PaymentMapping.stripe_charge_id,
        StripeTransfer.transaction_id,
        StripeRefund.transaction_id,
    ):
        known.update(db.session.execute(select(column).where(column.in_(wanted))).scalars())
    return known


# ---------------------------------------------------------------- Stripe: connected accounts


def compare_seller_accounts(run: Run) -> None:
    """Per connected account: its payouts, and its transfers to the platform when it has any
    subscription/extra-invoice row in the window (one account in memory at a time)."""
    last_id = 0
    while True:
        mappings = list(
            db.session.execute(
                select(AccountMapping.id, AccountMapping.stripe_account_id)
                .where(AccountMapping.id > last_id)
                .order_by(AccountMapping.id)
                .limit(PAGE)
            ).all()
        )
        if not mappings:
            return
        with_invoice_transfers = _accounts_with_invoice_transfers(run, [m.id for m in mappings])
        for mapping_id, account in mappings:
            _compare_payouts(run, account)
            if mapping_id in with_invoice_transfers:
                listing = get_stripe().list_transfers(
                    stripe_account=account, created_gte=run.list_gte, created_lte=run.list_lte
                )
                for page in chunks(listing):
                    run.record(_compare_transfer_page(run, page, account=account))
        last_id = mappings[-1].id


def _accounts_with_invoice_transfers(run: Run, mapping_ids: list[int]) -> set[int]:
    return set(
        db.session.execute(
            select(StripeTransfer.account_mapping_id)
            .where(
                StripeTransfer.account_mapping_id.in_(mapping_ids),
                StripeTransfer.type.in_(sorted(facts.ON_SELLER_ACCOUNT)),
                StripeTransfer.creation_datetime >= run.since,
                StripeTransfer.creation_datetime <= run.until,
            )
            .distinct()
        ).scalars()
    )


def _compare_payouts(run: Run, account: str) -> None:
    listing = get_stripe().list_payouts_created(
        account, created_gte=run.list_gte, created_lte=run.list_lte
    )
    for page in chunks(listing):
        ids = [obj["id"] for obj in page]
        tags = [str((obj.get("metadata") or {}).get("invoiceId")) for obj in page]
        invoice_ids = sorted({int(tag) for tag in tags if tag.isdigit()})
        rows = db.session.execute(
            payout_rows().where(
                or_(
                    StripePayout.payout_id.in_(ids),
                    StripePayout.mirakl_invoice_id.in_(invoice_ids),
                )
            )
        ).all()
        by_id, by_invoice = _by(rows, "payout_id"), _by(rows, "mirakl_invoice_id")
        findings: list[Finding | None] = []
        for obj in page:
            fact = facts.payout_fact(obj, account)
            owner = by_id.get(obj["id"])
            if owner is None and not fact.is_tagged and obj.get("automatic"):
                continue  # Stripe's own schedule, not a payout anyone made
            run.examined["payout"] += 1
            if owner is not None:
                run.seen_payouts.add(owner.id)
            claimant = (
                by_invoice.get(int(fact.mirakl_id))
                if owner is None and (fact.mirakl_id or "").isdigit()
                else None
            )
            findings.append(
                evaluate_pair(
                    facts.payout_row(owner) if owner else None,
                    fact,
                    facts.payout_row(claimant) if claimant else None,
                )
            )
        run.record(findings)


# ---------------------------------------------------------------- our rows no list showed

CREATED_STATUSES = ("TRANSFER_CREATED", "REFUND_CREATED", "PAYOUT_CREATED")


def look_up_unseen_rows(run: Run) -> None:
    """CREATED rows of the window that no Stripe list showed: retrieve each one by id."""
    kinds: tuple[tuple[Any, Select, SeenIds, Callable[[Any], OurRow]], ...] = (
        (StripeTransfer, transfer_rows(), run.seen_transfers, facts.transfer_row),
        (StripeRefund, refund_rows(), run.seen_refunds, facts.refund_row),
        (StripePayout, payout_rows(), run.seen_payouts, facts.payout_row),
    )
    for model, query, seen, to_row in kinds:
        last_id = 0
        while True:
            rows = db.session.execute(
                query.where(
                    model.id > last_id,
                    model.status.in_(CREATED_STATUSES),
                    model.creation_datetime >= run.since,
                    model.creation_datetime <= run.until,
                )
                .order_by(model.id)
                .limit(PAGE)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            unseen = [row for row in rows if row.id not in seen]
            run.record(
                _look_up(run, to_row(row), getattr(row, "transaction_id", None)) for row in unseen
            )


def _look_up(run: Run, row: OurRow, parent: str | None) -> Finding | None:
    """Retrieve one row's Stripe object; a 404 (or no id at all) leaves ``theirs`` None."""
    run.examined[row.operation] += 1
    gateway = get_stripe()
    fact: StripeFact | None = None
    try:
        if not row.stripe_id:
            fact = None
        elif row.operation == "reversal":
            fact = facts.reversal_fact(gateway.retrieve_reversal(parent or "", row.stripe_id))
        elif row.operation == "transfer":
            obj = gateway.retrieve_transfer(row.stripe_id, stripe_account=row.stripe_account_id)
            fact = facts.transfer_fact(obj, row.stripe_account_id)
        elif row.operation == "refund":
            fact = facts.refund_fact(gateway.retrieve_refund(row.stripe_id))
        elif row.stripe_account_id:
            obj = gateway.retrieve_payout(row.stripe_id, stripe_account=row.stripe_account_id)
            fact = facts.payout_fact(obj, row.stripe_account_id)
    except StripeRefused as exc:
        if exc.http_status != 404:
            raise
        fact = None
    return evaluate_pair(row, fact)


# ---------------------------------------------------------------- Mirakl


def compare_mirakl_refunds(run: Run) -> None:
    """Refunds Mirakl still lists as waiting (PA12/SPA12) although Stripe refunded them."""
    cfg, mirakl = current_app.config, get_mirakl()
    listings = []
    if cfg["ENABLE_PRODUCT_PAYMENT_REFUND"]:
        listings.append(mirakl.list_pending_refunds())
    if cfg["ENABLE_SERVICE_PAYMENT_REFUND"]:
        listings.append(mirakl.list_service_pending_refunds())
    for listing in listings:
        for page in chunks(item for item in listing if not isinstance(item, BadItem)):
            rows = db.session.execute(
                refund_rows().where(
                    StripeRefund.mirakl_refund_id.in_(sorted({item.id for item in page}))
                )
            ).all()
            findings = []
            for row in rows:
                run.examined["mirakl refund"] += 1
                findings.append(
                    evaluate_mirakl_refund(
                        facts.refund_row(row), is_waiting_in_mirakl=True, now=run.now
                    )
                )
            run.record(findings)


def compare_order_refunds(run: Run) -> None:
    """CREATED order transfers of the window whose order Mirakl refunded with no reversal here."""
    cfg, mirakl = current_app.config, get_mirakl()
    domains = []
    if cfg["ENABLE_PRODUCT_PAYMENT_REFUND"]:
        domains.append((TransferType.PRODUCT_ORDER.value, mirakl.list_orders_by_id))
    if cfg["ENABLE_SERVICE_PAYMENT_REFUND"]:
        domains.append((TransferType.SERVICE_ORDER.value, mirakl.list_service_orders_by_id))
    for transfer_type, fetch in domains:
        last_id = 0
        while True:
            rows = db.session.execute(
                transfer_rows()
                .where(
                    StripeTransfer.id > last_id,
                    StripeTransfer.type == transfer_type,
                    StripeTransfer.status == "TRANSFER_CREATED",
                    StripeTransfer.creation_datetime >= run.since,
                    StripeTransfer.creation_datetime <= run.until,
                )
                .order_by(StripeTransfer.id)
                .limit(PAGE)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            run.record(_compare_orders(run, rows, fetch))


def _compare_orders(
    run: Run, rows: Sequence[Any], fetch: Callable[[list[str]], Iterable[Any]]
) -> list[Finding | None]:
    by_order = {row.mirakl_id: row for row in rows if not row.mirakl_id.endswith(TAX_SUFFIX)}
    refunds: list[tuple[Any, str, str]] = []
    for order in fetch(sorted(by_order)):
        if isinstance(order, BadItem) or order.id not in by_order:
            continue
        run.examined["mirakl order"] += 1
        entries = getattr(order, "refunds", None)
        if entries is None:
            entries = [refund for line in order.lines for refund in line.refunds]
        refunds.extend((by_order[order.id], refund.id, refund.state) for refund in entries)
    if not refunds:
        return []
    reversed_ids = set(
        db.session.execute(
            select(StripeTransfer.mirakl_id).where(
                StripeTransfer.type == TransferType.REFUND.value,
                StripeTransfer.mirakl_id.in_(sorted({refund_id for _, refund_id, _ in refunds})),
            )
        ).scalars()
    )
    return [
        evaluate_order_refund(
            facts.transfer_row(row), refund_id, state, has_reversal_row=refund_id in reversed_ids
        )
        for row, refund_id, state in refunds
    ]
