"""Payment split runs (docs/split.md): which Mirakl orders become StripeTransfer rows, when.

New orders since the checkpoint, the ON_HOLD/FAILED backlog and operator retries each go
through an ``order_pass.OrderPass``; the Stripe transfers themselves are left to
``ledger/transfer_job.py``. Public: ``sync_product_orders``, ``sync_service_orders``,
``sync_backlog``, ``retry_transfers``, ``find_dispatchable_transfers``, ``count_statuses``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    ORDER_TRANSFER_TYPES,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.chunking import chunked
from webapp.services.ledger import attempts, checkpoints
from webapp.services.mirakl.types import BadItem
from webapp.services.split.order_pass import OrderPass, status_label
from webapp.services.split.rules import ACTOR, CHECKPOINT_KEYS, CHUNK, RETRIABLE, Order

log = logging.getLogger(__name__)


def _never(row: StripeTransfer) -> bool:
    return False


def _is_retriable(row: StripeTransfer) -> bool:
    return row.status in RETRIABLE


def _sync_new(transfer_type: TransferType) -> Counter[str]:
    """New orders since the checkpoint → rows; the checkpoint never passes an order that
    was not stored (a run that dies mid-way redoes its window next time)."""
    run = OrderPass(transfer_type, ACTOR)
    key = CHECKPOINT_KEYS[transfer_type]
    since = checkpoints.get_checkpoint(key)
    db.session.commit()
    if transfer_type == TransferType.PRODUCT_ORDER:
        listing: Iterable[Order | BadItem] = run.mirakl.list_orders(start_date=since)
    else:
        listing = run.mirakl.list_service_orders(date_created_start=since)
    newest: tuple[datetime, str] | None = None
    blocked: tuple[datetime, str] | None = None  # earliest order that could not be stored
    for chunk in chunked(listing, CHUNK):
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
    run = OrderPass(kind, ACTOR)
    rows = list(
        db.session.execute(
            select(StripeTransfer)
            .where(
                StripeTransfer.type == kind,
                StripeTransfer.status.in_(RETRIABLE),
                attempts.is_due(StripeTransfer, TransferStatus.FAILED),
            )
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
                StripeTransfer.type.in_(ORDER_TRANSFER_TYPES),
                StripeTransfer.status.in_(RETRIABLE),
            )
        ).scalars()
    )
    for kind in ORDER_TRANSFER_TYPES:
        subset = [row for row in rows if row.type == kind]
        if subset:
            OrderPass(kind, actor).reevaluate(
                subset, lambda row: row.id in wanted and row.status in RETRIABLE
            )
    return list(
        db.session.execute(
            select(StripeTransfer.id)
            .where(StripeTransfer.id.in_(wanted), StripeTransfer.status == TransferStatus.PENDING)
            .order_by(StripeTransfer.id)
        ).scalars()
    )


def find_dispatchable_transfers() -> list[int]:
    """PENDING order transfers to send now: never started, lost with their job, or to recheck.

    Order transfers only: invoice transfers and refund reversals belong to their own runs
    (``process-payout`` sends credits before the fees they fund; ``process-refund``).
    """
    return attempts.find_dispatchable(
        StripeTransfer, TransferStatus.PENDING, StripeTransfer.type.in_(ORDER_TRANSFER_TYPES)
    )


def count_statuses(ids: Sequence[int]) -> dict[str, int]:
    """How many of these transfer rows are in each status (for the job summary)."""
    if not ids:
        return {}
    db.session.expire_all()
    counts: Counter[str] = Counter()
    for batch in chunked(ids, attempts.ID_BATCH):
        counts.update(
            dict(
                db.session.execute(
                    select(StripeTransfer.status, func.count())
                    .where(StripeTransfer.id.in_(batch))
                    .group_by(StripeTransfer.status)
                ).all()
            )
        )
    return {status_label(status): count for status, count in sorted(counts.items())}
