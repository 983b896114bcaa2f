"""Payment validation orchestration (docs/validation.md): PA01 debits and capture decisions.

``sync_pending_debits`` confirms (or refuses) Mirakl's pending customer debits against the
payment mappings (``sync_service_pending_debits``: SPA11/SPA01 for service orders, ours);
``sync_captures`` decides which payments to capture or cancel from their logistical orders
and returns the mapping ids ready for the money job; ``retry_captures`` is the console's
retry. Pure rules live in ``validation/rules.py``, the money job in
``validation/money_job.py``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import PaymentMapping, PaymentMappingStatus
from webapp.services.chunking import chunked
from webapp.services.clients import get_mirakl
from webapp.services.ledger import transitions
from webapp.services.mirakl.types import BadItem, PendingDebit, ServiceDebit
from webapp.services.validation.rules import (
    ACTOR,
    DEBIT_REASON,
    QUERY_CHUNK,
    CaptureAction,
    DebitDecision,
    Order,
    Payment,
    choose_payment,
    evaluate_capture,
    evaluate_debits,
)

log = logging.getLogger(__name__)


def _mappings_for(commercial_ids: Iterable[str]) -> dict[str, list[PaymentMapping]]:
    ids = sorted(set(commercial_ids))
    found: dict[str, list[PaymentMapping]] = defaultdict(list)
    for chunk in chunked(ids, QUERY_CHUNK):
        rows = db.session.execute(
            select(PaymentMapping)
            .where(PaymentMapping.mirakl_commercial_order_id.in_(chunk))
            .order_by(PaymentMapping.id)
        ).scalars()
        for row in rows:
            found[row.mirakl_commercial_order_id].append(row)
    return found


def _record_reason(row: PaymentMapping, reason: Any, **fields: Any) -> None:
    """Write a reason (and fields) on a mapping without changing its status."""
    if reason is transitions.KEEP or reason == row.status_reason:
        if all(getattr(row, k) == v for k, v in fields.items()):
            return
        reason = transitions.KEEP
    transitions.transition(row, row.status, reason, actor=ACTOR, **fields)


def sync_pending_debits() -> dict[str, int]:
    """PA11 → PA01: confirm (or refuse) every pending debit that has a payment mapping.

    One batched PA01 for all of them; an entry Mirakl rejects is logged with its order id
    and its mapping gets the reason. Returns counts for the job summary.
    """
    mirakl = get_mirakl()
    return _confirm_debits(mirakl.list_pending_debits(), mirakl.confirm_debits)


def sync_service_pending_debits() -> dict[str, int]:
    """SPA11 → SPA01: the same for service orders (``ENABLE_SERVICE_PAYMENT_VALIDATION``).

    SPA11 debits carry no commercial id: it comes from the service order (SOR11).
    """
    mirakl = get_mirakl()
    debits = list(mirakl.list_waiting_service_debits())
    currencies = {d.order_id: d.currency.upper() for d in debits if not isinstance(d, BadItem)}

    def confirm(entries: Sequence[Mapping[str, Any]]) -> list[str | None]:
        return mirakl.confirm_service_debits(
            [{**e, "currency_code": currencies[e["order_id"]]} for e in entries]
        )

    return _confirm_debits(_as_pending_debits(debits), confirm)


def _as_pending_debits(
    debits: Sequence[ServiceDebit | BadItem],
) -> list[PendingDebit | BadItem]:
    """SPA11 debits with the commercial id and shop of their SOR11 service order."""
    ids = [d.order_id for d in debits if not isinstance(d, BadItem)]
    found = {
        o.id: o
        for o in (get_mirakl().list_service_orders_by_id(ids) if ids else [])
        if not isinstance(o, BadItem)
    }
    items: list[PendingDebit | BadItem] = []
    for debit in debits:
        order = None if isinstance(debit, BadItem) else found.get(debit.order_id)
        if isinstance(debit, BadItem) or order is None:
            items.append(
                debit
                if isinstance(debit, BadItem)
                else BadItem("SOR11", debit.order_id, "service order not returned by SOR11")
            )
            continue
        items.append(
            PendingDebit(
                order_id=debit.order_id,
                commercial_id=order.commercial_id,
                customer_id=debit.customer_id or order.customer_id,
                shop_id=order.shop_id,
                amount=debit.amount,
                currency=debit.currency,
            )
        )
    return items


def _confirm_debits(
    items: Iterable[PendingDebit | BadItem],
    confirm: Callable[[Sequence[Mapping[str, Any]]], list[str | None]],
) -> dict[str, int]:
    """Confirm (or refuse) the pending debits that have a payment mapping, in one batch."""
    counts: Counter[str] = Counter()
    by_commercial: dict[str, list[PendingDebit]] = defaultdict(list)
    for item in items:
        if isinstance(item, BadItem):
            counts["unreadable"] += 1
            log.warning("pending debit %s: unreadable: %s", item.mirakl_id, item.reason)
            continue
        counts["fetched"] += 1
        by_commercial[item.commercial_id].append(item)
    mappings = _mappings_for(by_commercial)
    plan: list[tuple[PaymentMapping, DebitDecision]] = []
    for commercial_id, debits in by_commercial.items():
        rows = {Payment.of(r): r for r in mappings.get(commercial_id, [])}
        chosen = choose_payment(list(rows))
        if chosen is None:
            counts["without payment"] += len(debits)
            continue
        decision = evaluate_debits(debits, chosen)
        plan.append((rows[chosen], decision))
        if len(decision.entries) < len(debits):
            counts["currency mismatch"] += len(debits) - len(decision.entries)
    entries = [entry for _, decision in plan for entry in decision.entries]
    errors = iter(confirm(entries) if entries else [])
    for row, decision in plan:
        failed = []
        for entry in decision.entries:
            error = next(errors)
            if error is None:
                counts[entry["payment_status"]] += 1
                continue
            counts["rejected by Mirakl"] += 1
            log.warning(
                "order %s (payment %s): PA01 rejected: %s",
                entry["order_id"],
                row.stripe_charge_id,
                error,
            )
            failed.append(
                f"{DEBIT_REASON} of order {entry['order_id']} rejected by Mirakl: {error}"
            )
        reasons = [r for r in (decision.reason, *failed) if r]
        sent = len(failed) < len(decision.entries)
        fields = {"mirakl_debit_status": decision.payment_status} if sent else {}
        if reasons:
            _record_reason(row, "; ".join(reasons), **fields)
        elif (row.status_reason or "").startswith(DEBIT_REASON):
            _record_reason(row, None, **fields)
        else:
            _record_reason(row, transitions.KEEP, **fields)
    db.session.commit()
    return dict(counts)


def _orders_by_commercial_id(
    commercial_ids: Sequence[str],
) -> tuple[dict[str, list[Order]], dict[str, list[str]]]:
    """OR11 by commercial id: the readable orders, and reasons for the unreadable ones."""
    found: dict[str, list[Order]] = defaultdict(list)
    unreadable: dict[str, list[str]] = defaultdict(list)
    for item in get_mirakl().list_orders_by_commercial_id(list(commercial_ids)):
        if isinstance(item, BadItem):
            raw = item.raw if isinstance(item.raw, Mapping) else {}
            commercial_id = str(raw.get("commercial_id") or "")
            log.warning(
                "order %s (commercial %s): unreadable: %s",
                item.mirakl_id,
                commercial_id or "?",
                item.reason,
            )
            if commercial_id:
                unreadable[commercial_id].append(
                    f"Order {item.mirakl_id} could not be read from Mirakl: {item.reason}"
                )
            continue
        found[item.commercial_id].append(item)
    return found, unreadable


def _add_service_orders(
    commercial_ids: Sequence[str],
    found: dict[str, list[Order]],
    unreadable: dict[str, list[str]],
) -> dict[str, ServiceDebit]:
    """SOR11 orders of these commercial orders, added to ``found``; their SPA11 debits."""
    service_ids: list[str] = []
    for item in get_mirakl().list_service_orders_by_commercial_id(list(commercial_ids)):
        if isinstance(item, BadItem):
            raw = item.raw if isinstance(item.raw, Mapping) else {}
            commercial_id = str(raw.get("commercial_order_id") or raw.get("commercial_id") or "")
            log.warning("service order %s: unreadable: %s", item.mirakl_id, item.reason)
            if commercial_id:
                unreadable[commercial_id].append(
                    f"Order {item.mirakl_id} could not be read from Mirakl: {item.reason}"
                )
            continue
        found[item.commercial_id].append(item)
        service_ids.append(item.id)
    if not service_ids:
        return {}
    return {
        d.order_id: d
        for d in get_mirakl().list_service_debits(service_ids)
        if not isinstance(d, BadItem)
    }


def sync_captures(mapping_ids: Sequence[int] | None = None) -> tuple[dict[str, int], list[int]]:
    """Decide capture or cancel for authorised payments; return counts and the ids to run.

    The decided amount is stored in ``captured_amount`` (0 = cancel) before dispatch. A
    mapping with an attempt in flight keeps the decision its idempotency key was sent with.
    ``mapping_ids`` limits the run to these mappings (the console's retry).
    """
    query = select(PaymentMapping).where(
        PaymentMapping.status == PaymentMappingStatus.TO_CAPTURE,
        PaymentMapping.mirakl_commercial_order_id.is_not(None),
    )
    if mapping_ids is not None:
        query = query.where(PaymentMapping.id.in_(list(mapping_ids)))
    rows = list(db.session.execute(query.order_by(PaymentMapping.id)).scalars())
    counts: Counter[str] = Counter()
    if not rows:
        return {}, []
    commercial_ids = sorted({r.mirakl_commercial_order_id for r in rows})
    found, unreadable = _orders_by_commercial_id(commercial_ids)
    debits: dict[str, ServiceDebit] = {}
    if current_app.config["ENABLE_SERVICE_PAYMENT_VALIDATION"]:
        debits = _add_service_orders(commercial_ids, found, unreadable)
    ready: list[int] = []
    for row in rows:
        if row.attempted_at is not None and row.captured_amount is not None:
            counts["in progress"] += 1
            ready.append(row.id)
            continue
        cid = row.mirakl_commercial_order_id
        decision = evaluate_capture(
            Payment.of(row), found.get(cid, []), unreadable.get(cid, []), debits
        )
        counts[decision.action] += 1
        if decision.action == CaptureAction.WAIT:
            log.info(
                "payment %s (order %s): waiting: %s", row.stripe_charge_id, cid, decision.reason
            )
            # A PA01 problem is what blocks the capture: keep it in front of the operator.
            debit_problem = (row.status_reason or "").startswith(DEBIT_REASON)
            reason = transitions.KEEP if debit_problem else decision.reason
            _record_reason(row, reason, captured_amount=None)
            continue
        _record_reason(row, decision.reason, captured_amount=decision.amount)
        ready.append(row.id)
    db.session.commit()
    return dict(counts), ready


def retry_captures(mapping_ids: Sequence[int]) -> list[int]:
    """Console retry: re-evaluate these ``to_capture`` mappings; return those now ready.

    Captured, canceled and failed mappings are final and never retried.
    """
    _, ready = sync_captures(mapping_ids)
    return ready
