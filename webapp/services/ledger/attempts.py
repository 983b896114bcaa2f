"""Exactly-once mechanics shared by every money operation (transfers, refunds, payouts, captures).

A money job has three steps, each safe to die after:

1. ``claim``: in its own committed transaction, mark the PENDING row as attempted now and
   store the attempt's idempotency key. Only one worker wins the compare-and-set. A row
   whose previous claim is older than ``PENDING_RECHECK_AFTER`` can be claimed again; the
   claim then says ``is_recheck`` and the executor must look the object up in Stripe
   before creating anything (Stripe only keeps idempotency keys for 24 hours).
2. Call Stripe outside any database transaction, with ``claim.key``.
3. ``record_success`` / ``record_refusal`` / ``record_unknown``: a transition, committed.

Because the key depends only on (operation, Mirakl id, attempt) and ``attempt`` grows only in
``record_refusal``, a retried, crashed or duplicated job re-sends the same key and Stripe
answers with the object it already made.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, Update, bindparam, or_, select, update
from sqlalchemy.orm import joinedload

from webapp.clock import utcnow
from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.extensions import db
from webapp.services.chunking import chunked
from webapp.services.ledger import transitions
from webapp.services.ledger.keys import idempotency_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A won claim: the row (fresh), the idempotency key to use, and whether an earlier
    attempt with this key may already have reached Stripe."""

    row: Any
    key: str
    is_recheck: bool


RETRY_BACKOFF_CAP = timedelta(hours=24)  # longest wait before a failed row is retried again


def retry_backoff(attempt: int) -> timedelta:
    """Wait before automatically retrying a row whose attempt ``attempt - 1`` was refused:
    ``RETRY_BACKOFF_BASE`` seconds (default 5 minutes), doubling, at most a day. Keeps a
    row that keeps failing from being retried — and notified — every few minutes."""
    base = current_app.config["RETRY_BACKOFF_BASE"]
    return min(timedelta(seconds=base * 2 ** max(0, attempt - 1)), RETRY_BACKOFF_CAP)


def is_due(model: type, failed: str) -> ColumnElement[bool]:
    """SQL condition: the row is not a FAILED row still inside its retry backoff."""
    return or_(
        model.status != failed,
        model.next_attempt_at.is_(None),
        model.next_attempt_at <= utcnow(),
    )


def is_row_due(row: Any) -> bool:
    """Python twin of ``is_due`` for a loaded row."""
    return row.next_attempt_at is None or row.next_attempt_at <= utcnow()


def recheck_after() -> timedelta:
    return timedelta(seconds=current_app.config["PENDING_RECHECK_AFTER"])


def claim(
    model: type,
    row_id: int,
    *,
    pending: str,
    operation: str,
    mirakl_id: str,
    eager: tuple[str, ...] = (),
) -> Claim | None:
    """Take the row for one attempt, or None if it is not PENDING or another worker has it.

    ``eager`` names relationships (e.g. ``account_mapping``) loaded with the won row, so the
    money job needs no further read before calling Stripe.
    """
    now = utcnow()
    stale = now - recheck_after()
    row = db.session.get(model, row_id)
    if row is None or row.status != pending:
        db.session.rollback()
        return None
    is_recheck = row.attempted_at is not None
    key = idempotency_key(operation, mirakl_id, row.attempt)
    take, read_back = _claim_statements(model, eager)
    won = db.session.execute(
        take,
        {
            "claim_id": row_id,
            "claim_status": pending,
            "claim_attempt": row.attempt,
            "claim_stale": stale,
            "attempted_at": now,
            "idempotency_key": key,
        },
    ).rowcount
    if won != 1:
        db.session.rollback()
        return None
    # Read the row back inside the claim's own transaction: it is ours from the UPDATE on
    # (row lock on PostgreSQL, write lock on SQLite), so what we send is what it holds.
    row = db.session.execute(read_back, {"claim_id": row_id}).scalar_one()
    db.session.commit()
    return Claim(row, key, is_recheck)


@functools.cache
def _claim_statements(model: type, eager: tuple[str, ...]) -> tuple[Update, Select]:
    """The claim's compare-and-set and its read-back, built once per table (building and
    keying them each time cost more than running them)."""
    table = model.__table__
    take = update(table).where(
        table.c.id == bindparam("claim_id"),
        table.c.status == bindparam("claim_status"),
        table.c.attempt == bindparam("claim_attempt"),
        or_(table.c.attempted_at.is_(None), table.c.attempted_at <= bindparam("claim_stale")),
    )
    read_back = (
        select(model)
        .where(model.id == bindparam("claim_id"))
        .options(*(joinedload(getattr(model, name)) for name in eager))
        .execution_options(populate_existing=True)
    )
    return take, read_back


def send_once(
    claim: Claim,
    *,
    find: Callable[[], dict[str, Any] | None],
    send: Callable[[], dict[str, Any]],
    created: str,
    failed: str,
    id_field: str,
    actor: str,
    label: str,
) -> None:
    """Steps 2 and 3 of a money job: on a recheck look the object up first, else (or if it is
    not there) send once with the claim's key; then record created, refused or unknown."""
    row = claim.row
    try:
        made = (find() if claim.is_recheck else None) or send()
    except StripeRefused as exc:
        record_refusal(row, failed, exc.message, actor=actor)
        log.warning(
            "%s (attempt %s): refused: %s (request %s)",
            label,
            row.attempt,
            exc.message,
            exc.request_id,
        )
        return
    except StripeOutcomeUnknown as exc:
        record_unknown(row, exc.message, actor=actor)
        return
    attempt = row.attempt
    record_success(row, created, actor=actor, **{id_field: made["id"]})
    log.info("%s (attempt %s): created %s", label, attempt, made["id"])


def record_success(row: Any, status: str, *, actor: str, **fields: Any) -> bool:
    """The operation happened (or was found in Stripe): move to ``status`` and commit."""
    won = transitions.transition(
        row, status, None, actor=actor, attempted_at=None, next_attempt_at=None, **fields
    )
    db.session.commit()
    return won


def record_refusal(row: Any, status: str, reason: str, *, actor: str, **fields: Any) -> bool:
    """Stripe definitively refused: fail the row; the next attempt will use a new key, and
    automatic retries wait ``retry_backoff`` (an operator's retry does not)."""
    attempt = row.attempt + 1
    won = transitions.transition(
        row,
        status,
        reason,
        actor=actor,
        attempt=attempt,
        attempted_at=None,
        next_attempt_at=utcnow() + retry_backoff(attempt),
        **fields,
    )
    db.session.commit()
    return won


def record_unknown(row: Any, reason: str, *, actor: str) -> None:
    """We cannot tell whether Stripe acted: stay PENDING with the claim kept, so the sweep
    looks the object up before the same key is sent again."""
    transitions.transition(
        row, row.status, f"Outcome unknown, will be checked: {reason}", actor=actor
    )
    db.session.commit()


def find_dispatchable(
    model: type, pending: str, *where: ColumnElement[bool], limit: int | None = None
) -> list[int]:
    """PENDING rows with no live claim (never started, lost with their job, or to recheck)
    that also meet ``where``, by id."""
    stale = utcnow() - recheck_after()
    query = (
        select(model.id)
        .where(
            model.status == pending,
            or_(model.attempted_at.is_(None), model.attempted_at <= stale),
            *where,
        )
        .order_by(model.id)
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.execute(query).scalars())


ID_BATCH = 500  # ids per ``IN (…)``: statements stay the same size however large the run


def mark_queued(model: type, ids: Sequence[int]) -> None:
    """Remember when rows were handed to a worker (the console shows "queued")."""
    now = utcnow()
    for batch in chunked(ids, ID_BATCH):
        db.session.execute(
            update(model)
            .where(model.id.in_(batch))
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
