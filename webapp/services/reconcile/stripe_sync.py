"""Reconciliation against Stripe: paged lists (100 per call, ``created`` filters) compared
page by page with our rows; then the rows of the window that no list showed, one by one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, or_, select

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
from webapp.services.chunking import chunked
from webapp.services.clients import get_stripe
from webapp.services.reconcile import facts
from webapp.services.reconcile.rules import (
    Finding,
    OurRow,
    StripeFact,
    evaluate_hand_reversal,
    evaluate_pair,
)
from webapp.services.reconcile.runs import (
    PAGE,
    Run,
    SeenIds,
    index_by,
    payout_rows,
    refund_rows,
    transfer_rows,
    transfers_where,
)

# ---------------------------------------------------------------- Stripe: platform transfers


def compare_platform_transfers(run: Run) -> None:
    """Platform transfers of the window (order and extra-credit transfers), reversals included."""
    listing = get_stripe().list_transfers(created_gte=run.list_gte, created_lte=run.list_lte)
    for page in chunked(listing, PAGE):
        run.record(_compare_transfer_page(run, page, account=None))


def _compare_transfer_page(
    run: Run, page: Sequence[dict[str, Any]], account: str | None
) -> list[Finding | None]:
    ids = [obj["id"] for obj in page]
    owners = index_by(
        transfers_where(
            StripeTransfer.transfer_id.in_(ids), StripeTransfer.type != TransferType.REFUND
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
        claimant = None
        if owner is None:
            claimant = claimants.get((facts.connector_type(obj), fact.mirakl_id)) or claimants.get(
                (None, fact.mirakl_id)
            )
        findings.append(
            _examine(run, "transfer", run.seen_transfers, facts.transfer_row, fact, owner, claimant)
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
    for row in transfers_where(
        StripeTransfer.mirakl_id.in_(sorted(mirakl_ids)),
        StripeTransfer.type != TransferType.REFUND,
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
    by_id, by_mirakl = _rows_by(
        transfer_rows().where(StripeTransfer.type == TransferType.REFUND),
        (StripeTransfer.transfer_id, [reversal["id"] for _, reversal in reversals]),
        (
            StripeTransfer.mirakl_id,
            sorted({str((r.get("metadata") or {}).get("miraklId")) for _, r in reversals}),
        ),
    )
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
        claimant = by_mirakl.get(fact.mirakl_id) if owner is None else None
        findings.append(
            _examine(run, "reversal", run.seen_transfers, facts.transfer_row, fact, owner, claimant)
        )
    return findings


def _rows_by(
    rows: Select, stripe_ids: tuple[Any, Sequence[Any]], mirakl_ids: tuple[Any, Sequence[Any]]
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Our rows holding one of these Stripe ids or named by one of these Mirakl ids, each
    given as (column, ids): indexed by the Stripe id (owners) and the Mirakl id (claimants)."""
    (id_column, ids), (mirakl_column, keys) = stripe_ids, mirakl_ids
    found = db.session.execute(rows.where(or_(id_column.in_(ids), mirakl_column.in_(keys)))).all()
    return index_by(found, id_column.key), index_by(found, mirakl_column.key)


def _examine(
    run: Run,
    kind: str,
    seen: SeenIds,
    to_row: Callable[[Any], OurRow],
    fact: StripeFact,
    owner: Any | None,
    claimant: Any | None,
) -> Finding | None:
    """Count one Stripe object of ours as examined, mark the row owning it as seen, and
    compare it with that row (or, unowned, with the row its metadata names)."""
    run.examined[kind] += 1
    if owner is not None:
        seen.add(owner.id)
    return evaluate_pair(
        to_row(owner) if owner else None, fact, to_row(claimant) if claimant else None
    )


# ---------------------------------------------------------------- Stripe: refunds


def compare_refunds(run: Run) -> None:
    """Platform refunds of the window: ours, duplicates, and refunds by hand of our charges."""
    listing = get_stripe().list_refunds_created(created_gte=run.list_gte, created_lte=run.list_lte)
    for page in chunked(listing, PAGE):
        run.record(_compare_refund_page(run, page))


def _compare_refund_page(run: Run, page: Sequence[dict[str, Any]]) -> list[Finding | None]:
    mirakl_ids = sorted(
        {str(m) for obj in page if (m := (obj.get("metadata") or {}).get("miraklRefundId"))}
    )
    by_id, by_mirakl = _rows_by(
        refund_rows(),
        (StripeRefund.stripe_refund_id, [obj["id"] for obj in page]),
        (StripeRefund.mirakl_refund_id, mirakl_ids),
    )
    ours = _our_charges([obj.get("charge") for obj in page if obj["id"] not in by_id])
    findings: list[Finding | None] = []
    for obj in page:
        fact = facts.refund_fact(obj)
        owner = by_id.get(obj["id"])
        if owner is None and not fact.is_tagged and obj.get("charge") not in ours:
            continue  # a refund of a charge the connector knows nothing about
        claimant = by_mirakl.get(fact.mirakl_id) if owner is None else None
        findings.append(
            _examine(run, "refund", run.seen_refunds, facts.refund_row, fact, owner, claimant)
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
                for page in chunked(listing, PAGE):
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
    for page in chunked(listing, PAGE):
        tags = [str((obj.get("metadata") or {}).get("invoiceId")) for obj in page]
        by_id, by_invoice = _rows_by(
            payout_rows(),
            (StripePayout.payout_id, [obj["id"] for obj in page]),
            (StripePayout.mirakl_invoice_id, sorted({int(tag) for tag in tags if tag.isdecimal()})),
        )
        findings: list[Finding | None] = []
        for obj in page:
            fact = facts.payout_fact(obj, account)
            owner = by_id.get(obj["id"])
            if owner is None and not fact.is_tagged and obj.get("automatic"):
                continue  # Stripe's own schedule, not a payout anyone made
            claimant = (
                by_invoice.get(int(fact.mirakl_id))
                if owner is None and (fact.mirakl_id or "").isdecimal()
                else None
            )
            findings.append(
                _examine(run, "payout", run.seen_payouts, facts.payout_row, fact, owner, claimant)
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
