"""Payment validation: confirm customer debits to Mirakl (PA01), then capture or cancel.

Reference-connector.md §3, with its defects fixed:

* PA01 ``REFUSED`` when the payment failed or was canceled, so Mirakl stops waiting
  (reference issue #95); a debit whose currency differs from the charge's is not validated
  and the mapping says why.
* Capture and cancel are money jobs (``execute_capture``, operation ``capture``): claimed,
  sent with an idempotency key, recorded. A payment Stripe already captured or canceled is
  reconciled instead of failing forever (reference issue #105).

Pure evaluation on top (``choose_payment``, ``evaluate_debits``, ``evaluate_capture``),
orchestration below (``sync_pending_debits``, ``sync_captures``, ``retry_captures``), the
money job last.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.extensions import db
from webapp.models import PaymentMapping, PaymentMappingStatus
from webapp.services import attempts, orders, transitions
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.mirakl_types import BadItem, PendingDebit, ProductOrder
from webapp.services.money import format_amount, to_minor
from webapp.services.payments import (
    CANCELED,
    CAPTURABLE,
    CAPTURED,
    FAILED,
    captured_amount_of,
    payment_state,
)
from webapp.services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

M = PaymentMappingStatus
ACTOR = "validate-pending-debit"
MONEY_ACTOR = "money-job"
OPERATION = "capture"  # the money job's name in webapp.jobs.money.EXECUTORS
DEBIT_REASON = "Mirakl debit"  # prefix of the reasons this step writes (cleared on success)
QUERY_CHUNK = 500  # commercial ids per SQL IN (...)
OK, REFUSED = "OK", "REFUSED"


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
    live = [p for p in candidates if p.status in (M.TO_CAPTURE.value, M.CAPTURED.value)]
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
    if payment.status in (M.FAILED.value, M.CANCELED.value):
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


def evaluate_capture(
    payment: Payment,
    logistical_orders: Sequence[ProductOrder],
    unreadable: Sequence[str] = (),
) -> CaptureDecision:
    """Capture, cancel or wait, for one authorised payment (reference §3.3).

    1. an order of the commercial order could not be read → wait.
    2. Mirakl has no order for the commercial order → wait (reference: skipped).
    3. the payment amount is unknown → wait (a mapping without currency, as the reference
       stored them, takes its orders' currency).
    4. an order is in another currency than the payment → wait.
    5. an order is not accepted or refused yet → wait.
    6. an order is neither refused/canceled nor debited (PA01 not applied) → wait.
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
        if not orders.is_aborted(order) and not orders.is_paid(order):
            return wait(f"Order {order.id} is waiting for the customer debit (PA01)")
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


# ---------------------------------------------------------------- orchestration


def _mappings_for(commercial_ids: Iterable[str]) -> dict[str, list[PaymentMapping]]:
    ids = sorted(set(commercial_ids))
    found: dict[str, list[PaymentMapping]] = defaultdict(list)
    for start in range(0, len(ids), QUERY_CHUNK):
        rows = db.session.execute(
            select(PaymentMapping)
            .where(PaymentMapping.mirakl_commercial_order_id.in_(ids[start : start + QUERY_CHUNK]))
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
    counts: Counter[str] = Counter()
    by_commercial: dict[str, list[PendingDebit]] = defaultdict(list)
    for item in mirakl.list_pending_debits():
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
    errors = iter(mirakl.confirm_debits(entries) if entries else [])
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
) -> tuple[dict[str, list[ProductOrder]], dict[str, list[str]]]:
    """OR11 by commercial id: the readable orders, and reasons for the unreadable ones."""
    found: dict[str, list[ProductOrder]] = defaultdict(list)
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


def sync_captures(mapping_ids: Sequence[int] | None = None) -> tuple[dict[str, int], list[int]]:
    """Decide capture or cancel for authorised payments; return counts and the ids to run.

    The decided amount is stored in ``captured_amount`` (0 = cancel) before dispatch. A
    mapping with an attempt in flight keeps the decision its idempotency key was sent with.
    ``mapping_ids`` limits the run to these mappings (the console's retry).
    """
    query = select(PaymentMapping).where(
        PaymentMapping.status == M.TO_CAPTURE.value,
        PaymentMapping.mirakl_commercial_order_id.is_not(None),
    )
    if mapping_ids is not None:
        query = query.where(PaymentMapping.id.in_(list(mapping_ids)))
    rows = list(db.session.execute(query.order_by(PaymentMapping.id)).scalars())
    counts: Counter[str] = Counter()
    if not rows:
        return {}, []
    found, unreadable = _orders_by_commercial_id(
        sorted({r.mirakl_commercial_order_id for r in rows})
    )
    ready: list[int] = []
    for row in rows:
        if row.attempted_at is not None and row.captured_amount is not None:
            counts["in progress"] += 1
            ready.append(row.id)
            continue
        cid = row.mirakl_commercial_order_id
        decision = evaluate_capture(Payment.of(row), found.get(cid, []), unreadable.get(cid, []))
        counts[decision.action.value] += 1
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


# ---------------------------------------------------------------- the money job


def _load_payment(
    gateway: StripeGateway, payment_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The payment's charge and PaymentIntent as Stripe has them now (either may be None)."""
    if payment_id.startswith("pi_"):
        return None, gateway.retrieve_payment_intent(payment_id)
    if not payment_id.startswith(("ch_", "py_")):
        raise StripeRefused(f"Unsupported payment id {payment_id}: expected pi_, ch_ or py_")
    charge = gateway.retrieve_charge(payment_id)
    intent = charge.get("payment_intent")
    if isinstance(intent, str) and intent:
        intent = gateway.retrieve_payment_intent(intent)
    return charge, intent if isinstance(intent, dict) else None


def _send(
    gateway: StripeGateway,
    row: PaymentMapping,
    charge: dict[str, Any] | None,
    intent: dict[str, Any] | None,
    key: str,
) -> None:
    """The one Stripe write of this attempt: capture or cancel, PaymentIntent or charge."""
    amount = row.captured_amount or 0
    if intent is not None:
        if amount > 0:
            gateway.capture_payment_intent(intent["id"], amount, idempotency_key=key)
        else:
            gateway.cancel_payment_intent(intent["id"], idempotency_key=key)
        return
    assert charge is not None
    if amount > 0:
        gateway.capture_charge(charge["id"], amount, idempotency_key=key)
    else:
        # A charge without PaymentIntent is released by refunding it in full.
        metadata = {"miraklCommercialOrderId": row.mirakl_commercial_order_id}
        gateway.create_refund(charge["id"], None, metadata=metadata, idempotency_key=key)


def _finish(row: PaymentMapping, to: M, reason: str | None, **fields: Any) -> None:
    transitions.transition(
        row, to, reason, actor=MONEY_ACTOR, attempted_at=None, next_attempt_at=None, **fields
    )
    db.session.commit()


def _reconcile(
    row: PaymentMapping,
    state: str,
    stripe_status: str,
    charge: dict[str, Any] | None,
    intent: dict[str, Any] | None,
    is_recheck: bool = False,
) -> bool:
    """Record a final state found in Stripe (captured, canceled, failed); False if not final.

    On a recheck, the state our own lost attempt asked for is a plain success.
    """
    planned = CAPTURED if (row.captured_amount or 0) > 0 else CANCELED
    ours = is_recheck and state == planned
    if state == CAPTURED:
        amount = captured_amount_of(charge, intent)
        note = "" if planned == CAPTURED else "; the connector had decided to cancel it"
        reason = (
            f"Payment {row.stripe_charge_id} was already captured on Stripe "
            f"({format_amount(amount, row.currency)}){note}"
        )
        _finish(row, M.CAPTURED, None if ours else reason, captured_amount=amount)
    elif state == CANCELED:
        reason = f"Payment {row.stripe_charge_id} was already canceled on Stripe ({stripe_status})"
        _finish(row, M.CANCELED, None if ours else reason, captured_amount=0)
    elif state == FAILED:
        _finish(row, M.FAILED, f"Payment {row.stripe_charge_id} failed")
    else:
        return False
    log.info("payment %s: reconciled with Stripe: %s", row.stripe_charge_id, state)
    return True


def execute_capture(mapping_id: int) -> None:
    """Capture (or cancel) one decided ``to_capture`` payment exactly once; record the outcome.

    The payment is looked up in Stripe first, so a payment already captured or canceled
    (by the shop front, or by a lost earlier attempt) is reconciled, not sent again.
    """
    row = db.session.get(PaymentMapping, mapping_id)
    if row is None or row.status != M.TO_CAPTURE.value or row.captured_amount is None:
        db.session.rollback()
        return
    operation = "capture" if row.captured_amount > 0 else "cancel"
    claim = attempts.claim(
        PaymentMapping,
        mapping_id,
        pending=M.TO_CAPTURE.value,
        operation=operation,
        mirakl_id=row.stripe_charge_id,
    )
    if claim is None:
        return
    row = claim.row
    gateway = get_stripe()
    try:
        charge, intent = _load_payment(gateway, row.stripe_charge_id)
        state, stripe_status = payment_state(charge, intent)
        if state != CAPTURABLE:
            if not _reconcile(row, state, stripe_status, charge, intent, claim.is_recheck):
                reason = (
                    f"Payment {row.stripe_charge_id} is not ready yet, status is {stripe_status}"
                )
                _finish(row, M.TO_CAPTURE, reason)
            return
        try:
            _send(gateway, row, charge, intent, claim.key)
        except StripeRefused as refused:
            charge, intent = _load_payment(gateway, row.stripe_charge_id)
            state, stripe_status = payment_state(charge, intent)
            if _reconcile(row, state, stripe_status, charge, intent):
                return
            raise refused from None
    except StripeRefused as exc:
        attempts.record_refusal(
            row, M.TO_CAPTURE, f"Stripe refused to {operation}: {exc.message}", actor=MONEY_ACTOR
        )
        log.warning(
            "payment %s (attempt %s): %s refused: %s (request %s)",
            row.stripe_charge_id,
            row.attempt,
            operation,
            exc.message,
            exc.request_id,
        )
        return
    except StripeOutcomeUnknown as exc:
        attempts.record_unknown(row, exc.message, actor=MONEY_ACTOR)
        return
    if operation == "capture":
        attempts.record_success(row, M.CAPTURED, actor=MONEY_ACTOR)
    else:
        attempts.record_success(row, M.CANCELED, actor=MONEY_ACTOR)
    log.info(
        "payment %s (attempt %s): %s done, %s",
        row.stripe_charge_id,
        row.attempt,
        operation,
        format_amount(row.captured_amount, row.currency),
    )
