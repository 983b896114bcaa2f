"""The state machines of money operations, and the one function that changes a status.

Nothing else assigns ``.status`` on a money row. ``transition`` checks the move against the
operation's table, writes it as a compare-and-set (``UPDATE … WHERE id = :id AND status =
:from``) so two workers can never both win, records the move in ``operation_event`` and,
on a move into a failed status, writes the operator notification into the outbox in the
same transaction (so it is sent once per failure, never lost, never repeated).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Update, bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.clock import utcnow
from webapp.errors import IllegalTransition
from webapp.extensions import db
from webapp.models import (
    REASON_LENGTH,
    OperationEvent,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
)
from webapp.services.ledger.notices import record_operation_failed

# None is "the row is new". ON_HOLD → ON_HOLD and PENDING → PENDING update the reason only.
TRANSFER_TRANSITIONS: dict[Any, set[Any]] = {
    None: {
        TransferStatus.PENDING,
        TransferStatus.ON_HOLD,
        TransferStatus.ABORTED,
        TransferStatus.IGNORED,
        TransferStatus.CREATED,
    },
    TransferStatus.PENDING: {
        TransferStatus.PENDING,
        TransferStatus.CREATED,
        TransferStatus.FAILED,
        TransferStatus.ON_HOLD,
        TransferStatus.ABORTED,
    },
    TransferStatus.ON_HOLD: {
        TransferStatus.ON_HOLD,
        TransferStatus.PENDING,
        TransferStatus.ABORTED,
        TransferStatus.IGNORED,
        TransferStatus.CREATED,
    },
    TransferStatus.FAILED: {
        TransferStatus.PENDING,
        TransferStatus.ON_HOLD,
        TransferStatus.ABORTED,
        TransferStatus.IGNORED,
        TransferStatus.CREATED,
    },
    TransferStatus.ABORTED: set(),
    TransferStatus.IGNORED: set(),
    TransferStatus.CREATED: set(),
}

REFUND_TRANSITIONS: dict[Any, set[Any]] = {
    None: {RefundStatus.PENDING, RefundStatus.ON_HOLD, RefundStatus.ABORTED, RefundStatus.CREATED},
    RefundStatus.PENDING: {
        RefundStatus.PENDING,
        RefundStatus.CREATED,
        RefundStatus.FAILED,
        RefundStatus.ON_HOLD,
        RefundStatus.ABORTED,
    },
    RefundStatus.ON_HOLD: {
        RefundStatus.ON_HOLD,
        RefundStatus.PENDING,
        RefundStatus.ABORTED,
        RefundStatus.CREATED,
    },
    RefundStatus.FAILED: {
        RefundStatus.PENDING,
        RefundStatus.ON_HOLD,
        RefundStatus.ABORTED,
        RefundStatus.CREATED,
    },
    RefundStatus.ABORTED: set(),
    RefundStatus.CREATED: set(),
}

# A created payout can still fail at the bank (payout.failed webhook) and be paid again.
PAYOUT_TRANSITIONS: dict[Any, set[Any]] = {
    None: {PayoutStatus.PENDING, PayoutStatus.ON_HOLD, PayoutStatus.ABORTED, PayoutStatus.CREATED},
    PayoutStatus.PENDING: {
        PayoutStatus.PENDING,
        PayoutStatus.CREATED,
        PayoutStatus.FAILED,
        PayoutStatus.ON_HOLD,
        PayoutStatus.ABORTED,
    },
    PayoutStatus.ON_HOLD: {
        PayoutStatus.ON_HOLD,
        PayoutStatus.PENDING,
        PayoutStatus.ABORTED,
        PayoutStatus.CREATED,
    },
    PayoutStatus.FAILED: {
        PayoutStatus.PENDING,
        PayoutStatus.ON_HOLD,
        PayoutStatus.ABORTED,
        PayoutStatus.CREATED,
    },
    PayoutStatus.ABORTED: set(),
    PayoutStatus.CREATED: {PayoutStatus.FAILED},
}

# Payment mappings only move forward: a late charge.succeeded never undoes a capture.
PAYMENT_TRANSITIONS: dict[Any, set[Any]] = {
    None: {
        PaymentMappingStatus.TO_CAPTURE,
        PaymentMappingStatus.CAPTURED,
        PaymentMappingStatus.CANCELED,
        PaymentMappingStatus.FAILED,
    },
    PaymentMappingStatus.TO_CAPTURE: {
        PaymentMappingStatus.TO_CAPTURE,
        PaymentMappingStatus.CAPTURED,
        PaymentMappingStatus.CANCELED,
        PaymentMappingStatus.FAILED,
    },
    PaymentMappingStatus.CAPTURED: {PaymentMappingStatus.CAPTURED},
    PaymentMappingStatus.CANCELED: {PaymentMappingStatus.CANCELED},
    PaymentMappingStatus.FAILED: {PaymentMappingStatus.FAILED},
}

MACHINES: dict[type, tuple[str, type, dict[Any, set[Any]]]] = {
    StripeTransfer: ("transfer", TransferStatus, TRANSFER_TRANSITIONS),
    StripeRefund: ("refund", RefundStatus, REFUND_TRANSITIONS),
    StripePayout: ("payout", PayoutStatus, PAYOUT_TRANSITIONS),
    PaymentMapping: ("payment", PaymentMappingStatus, PAYMENT_TRANSITIONS),
}

FAILED_STATUSES = {TransferStatus.FAILED, RefundStatus.FAILED, PayoutStatus.FAILED}
_EVENT_INSERT = insert(OperationEvent.__table__)
KEEP = object()  # "leave status_reason as it is"


def truncate_reason(reason: str | None) -> str | None:
    """Reasons are stored in 1024 characters, as the reference does."""
    if reason is None:
        return None
    return reason if len(reason) <= REASON_LENGTH else reason[: REASON_LENGTH - 1] + "…"


def _status_of(row: Any) -> Any:
    _, enum, _ = MACHINES[type(row)]
    return None if row.status is None else enum(row.status)


def can_transition(row: Any, to: Any) -> bool:
    """Whether the row's state machine allows moving from its current status to ``to``."""
    _, enum, table = MACHINES[type(row)]
    return enum(to) in table[_status_of(row)]


def operation_name(row: Any) -> str:
    """The operation kind of a money row: transfer, refund, payout or payment."""
    return MACHINES[type(row)][0]


def create(row: Any, status: Any, reason: str | None = None, *, actor: str | None = None) -> None:
    """Give a new row its first status and add it to the session (history included)."""
    create_all([(row, status, reason)], actor=actor)


def create_all(entries: Sequence[tuple[Any, Any, str | None]], *, actor: str | None) -> None:
    """``create`` for many new rows, given as (row, status, reason): one flush inserts them
    all (batched), so their history entries can name their ids."""
    firsts = []
    for row, status, reason in entries:
        name, enum, table = MACHINES[type(row)]
        to = enum(status)
        if row.id is not None or to not in table[None]:
            raise IllegalTransition(f"{name}: cannot create a row in status {to}")
        row.status = to
        row.status_reason = truncate_reason(reason)
        firsts.append((row, to))
    db.session.add_all([row for row, _ in firsts])
    db.session.flush()
    _record_all([(row, None, to, row.status_reason) for row, to in firsts], actor)


def transition(
    row: Any,
    to: Any,
    reason: Any = KEEP,
    *,
    actor: str | None = None,
    **fields: Any,
) -> bool:
    """Move ``row`` to status ``to`` if it is still in the status we read; return who won.

    ``fields`` are other columns written in the same UPDATE (e.g. ``transfer_id``).

    Raises:
        IllegalTransition: the state machine does not allow the move.
    """
    name, enum, table = MACHINES[type(row)]
    frm = _status_of(row)
    to = enum(to)
    if to not in table[frm]:
        raise IllegalTransition(f"{name} {row.id}: {frm or 'new'} → {to} is not allowed")
    values: dict[str, Any] = {"status": to, "modification_datetime": utcnow(), **fields}
    if reason is not KEEP:
        values["status_reason"] = truncate_reason(reason)
    db.session.flush()  # pending changes of the row go before its compare-and-set
    result = db.session.execute(
        _compare_and_set(type(row)), {"cas_id": row.id, "cas_status": row.status, **values}
    )
    if result.rowcount != 1:
        db.session.refresh(row)
        return False
    old_reason = row.status_reason
    for key, value in values.items():
        # The row in memory must match what we wrote, without issuing a second UPDATE.
        set_committed_value(row, key, value)
    if frm != to or values.get("status_reason", old_reason) != old_reason:
        _record(row, frm, to, values.get("status_reason", old_reason), actor)
    if to in FAILED_STATUSES and frm != to:
        record_operation_failed(row)
    return True


@functools.cache
def _compare_and_set(model: type) -> Update:
    """``UPDATE <table> SET <the keys given> WHERE id = :cas_id AND status = :cas_status``,
    built once per table: on the hot path, building and keying the statement each time cost
    more than running it."""
    table = model.__table__
    return update(table).where(
        table.c.id == bindparam("cas_id"), table.c.status == bindparam("cas_status")
    )


def _record(row: Any, frm: Any, to: Any, reason: str | None, actor: str | None) -> None:
    _record_all([(row, frm, to, reason)], actor)


def _record_all(moves: Sequence[tuple[Any, Any, Any, str | None]], actor: str | None) -> None:
    """History entries of (row, from, to, reason) moves, in one INSERT (executemany): nothing
    reads them back as objects, so they skip the unit of work."""
    if not moves:
        return
    db.session.execute(
        _EVENT_INSERT,
        [
            {
                "operation": operation_name(row),
                "operation_id": row.id,
                "from_status": frm,
                "to_status": to,
                "reason": reason,
                "attempt": getattr(row, "attempt", None),
                "actor": actor,
            }
            for row, frm, to, reason in moves
        ],
    )
