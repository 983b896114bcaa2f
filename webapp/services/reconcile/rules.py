"""Reconciliation rules: given one of our rows and what Stripe or Mirakl says, the finding.

Pure: plain values in (``OurRow``, ``StripeFact``), a ``Finding`` or None out; no database,
no API, no clock (``now`` is passed). ``reconcile.sync`` gathers the facts and stores the
findings. A finding is a report for a person; nothing here ever moves money.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from webapp.models import FindingClass

# Our statuses, whatever the operation (the part after TRANSFER_/REFUND_/PAYOUT_).
CREATED, PENDING = "CREATED", "PENDING"
DEAD_IN_STRIPE = frozenset({"failed", "canceled", "reversed"})  # StripeFact.state values
MIRAKL_PAID_REFUND = frozenset({"REFUNDED", "OK"})  # OR11 line refund / SOR11 refund states
NOT_TOLD_GRACE = timedelta(hours=1)  # a refund job between Stripe and PA02 is not drift

# What the operator can do, per class (console, digest, docs/reconciliation.md).
ACTIONS = {
    FindingClass.MISSING_IN_STRIPE: (
        "Investigate in Stripe (deleted, other account, restored database?). If no money "
        "moved, abort the row with a reason and pay it by hand or from Mirakl again."
    ),
    FindingClass.UNKNOWN_TO_US: (
        "Investigate in Stripe: a duplicate or an object made by hand. Reverse or cancel a "
        "duplicate in Stripe; record a manual one in Mirakl."
    ),
    FindingClass.AMOUNT_DIFFERS: (
        "Compare the two amounts: correct in Stripe (partial reversal or refund) or find "
        "why our row changed (restore from backup?)."
    ),
    FindingClass.STATE_DIFFERS: (
        "Stripe or Mirakl moved on without us: abort the row with a reason if the money is "
        "back, or retry the refund/reversal here when Mirakl refunded the order."
    ),
    FindingClass.MIRAKL_NOT_TOLD: (
        "Confirm the refund to Mirakl: retry the refund row (it re-sends PA02/SPA02, never a "
        "second Stripe refund)."
    ),
}
NOTIFIED_CLASSES = frozenset({FindingClass.UNKNOWN_TO_US, FindingClass.AMOUNT_DIFFERS})


@dataclass(frozen=True)
class OurRow:
    """One of our money rows as reconciliation sees it."""

    operation: str  # transfer, reversal, refund, payout
    id: int
    mirakl_id: str
    status: str  # the contract's string, e.g. TRANSFER_CREATED
    stripe_id: str | None
    amount: int | None
    currency: str | None
    created_at: datetime
    stripe_account_id: str | None = None
    modified_at: datetime | None = None

    @property
    def state(self) -> str:
        """``CREATED``, ``PENDING``, ``FAILED``... without the operation prefix."""
        return self.status.split("_", 1)[-1]


@dataclass(frozen=True)
class StripeFact:
    """One Stripe object (transfer, reversal, refund or payout) reduced to what we compare."""

    kind: str
    id: str
    amount: int
    currency: str
    state: str  # ok, failed, canceled, reversed (fully), pending
    created_at: datetime
    mirakl_id: str | None = None  # from our metadata
    is_tagged: bool = False  # carries the connector's metadata
    account: str | None = None


@dataclass(frozen=True)
class Finding:
    """One disagreement, with both sides' ids and amounts."""

    finding_class: FindingClass
    operation: str
    subject_at: datetime
    detail: str
    operation_id: int | None = None
    mirakl_id: str | None = None
    stripe_id: str | None = None
    stripe_account_id: str | None = None
    our_amount: int | None = None
    their_amount: int | None = None
    currency: str | None = None
    their_currency: str | None = None

    @property
    def key(self) -> str:
        """What names this disagreement across runs (class, our row, the Stripe object)."""
        parts = (
            self.finding_class,
            self.operation,
            self.operation_id,
            self.stripe_id,
            self.mirakl_id,
        )
        return "|".join("" if part is None else str(part) for part in parts)[:255]


def _finding(
    cls: FindingClass, ours: OurRow | None, theirs: StripeFact | None, detail: str
) -> Finding:
    subject = ours.created_at if ours is not None else theirs.created_at  # type: ignore[union-attr]
    return Finding(
        finding_class=cls,
        operation=ours.operation if ours is not None else theirs.kind,  # type: ignore[union-attr]
        subject_at=subject,
        detail=detail,
        operation_id=ours.id if ours is not None else None,
        mirakl_id=ours.mirakl_id if ours is not None else theirs.mirakl_id,  # type: ignore[union-attr]
        stripe_id=theirs.id if theirs is not None else (ours.stripe_id if ours else None),
        stripe_account_id=(theirs.account if theirs is not None else None)
        or (ours.stripe_account_id if ours is not None else None),
        our_amount=ours.amount if ours is not None else None,
        their_amount=theirs.amount if theirs is not None else None,
        currency=(ours.currency if ours is not None and ours.currency else None)
        or (theirs.currency if theirs is not None else None),
        their_currency=theirs.currency if theirs is not None else None,
    )


def evaluate_pair(
    ours: OurRow | None, theirs: StripeFact | None, claimant: OurRow | None = None
) -> Finding | None:
    """Compare our row with the Stripe object it owns (either side may be missing).

    ``claimant`` is, when ``ours`` is None, the row the object's metadata names (same
    operation and Mirakl id) although it does not hold the object's id. Checks, in order:

    1. No Stripe object: a CREATED row is MISSING_IN_STRIPE; any other row is fine.
    2. No row owns the object: a claimant PENDING is a money job at work (fine); a claimant
       with no Stripe id that is not CREATED (FAILED, ABORTED, ON_HOLD) is STATE_DIFFERS
       (the money moved although we think it did not); otherwise UNKNOWN_TO_US (a duplicate,
       or made by hand).
    3. Our row PENDING: a money job is at work (fine).
    4. Amount or currency differ: AMOUNT_DIFFERS.
    5. Stripe says failed, canceled or fully reversed while we say CREATED: STATE_DIFFERS.
    6. We say FAILED, ABORTED or ON_HOLD while the object is alive in Stripe: STATE_DIFFERS.
    """
    if theirs is None:
        if ours is not None and ours.state == CREATED:
            where = f" (account {ours.stripe_account_id})" if ours.stripe_account_id else ""
            what = ours.stripe_id or "no Stripe id at all"
            return _finding(
                FindingClass.MISSING_IN_STRIPE, ours, None, f"{what} not found in Stripe{where}"
            )
        return None
    if ours is None:
        return _evaluate_unowned(theirs, claimant)
    if ours.state == PENDING:
        return None
    if ours.amount != theirs.amount or (ours.currency or "").lower() != theirs.currency.lower():
        return _finding(
            FindingClass.AMOUNT_DIFFERS,
            ours,
            theirs,
            f"ours {ours.amount} {ours.currency}, Stripe {theirs.amount} {theirs.currency}",
        )
    is_dead = theirs.state in DEAD_IN_STRIPE
    if (ours.state == CREATED) == is_dead:
        detail = f"{theirs.state} in Stripe, {ours.status} here"
        return _finding(FindingClass.STATE_DIFFERS, ours, theirs, detail)
    return None


def _evaluate_unowned(theirs: StripeFact, claimant: OurRow | None) -> Finding | None:
    if claimant is not None and claimant.state == PENDING:
        return None
    if claimant is not None and not claimant.stripe_id and claimant.state != CREATED:
        if theirs.state in DEAD_IN_STRIPE:
            return None
        return _finding(
            FindingClass.STATE_DIFFERS,
            claimant,
            theirs,
            f"{theirs.id} exists in Stripe, {claimant.status} here",
        )
    if theirs.state in ("failed", "canceled"):
        return None  # a dead duplicate moved no money
    if claimant is not None:
        detail = f"duplicate: row #{claimant.id} holds {claimant.stripe_id or 'no Stripe id'}"
    elif theirs.is_tagged:
        detail = f"carries our metadata (Mirakl id {theirs.mirakl_id}) but no row owns it"
    else:
        detail = f"made by hand on one of our {'accounts' if theirs.account else 'charges'}"
    finding = _finding(FindingClass.UNKNOWN_TO_US, None, theirs, detail)
    if claimant is not None:
        return Finding(**{**finding.__dict__, "operation_id": claimant.id})
    return finding


def _finding_on(
    cls: FindingClass, ours: OurRow, subject_at: datetime, detail: str, *, stripe_id: str | None
) -> Finding:
    """A finding about one of our rows: its operation, ids and amount on our side."""
    return Finding(
        finding_class=cls,
        operation=ours.operation,
        subject_at=subject_at,
        detail=detail,
        operation_id=ours.id,
        mirakl_id=ours.mirakl_id,
        stripe_id=stripe_id,
        our_amount=ours.amount,
        currency=ours.currency,
    )


def evaluate_hand_reversal(transfer: OurRow, reversal: StripeFact) -> Finding | None:
    """A reversal without our metadata on one of our transfers: STATE_DIFFERS (reversed by
    hand in Stripe while the transfer is CREATED here), unless the transfer is not CREATED."""
    if transfer.state != CREATED:
        return None
    finding = _finding_on(
        FindingClass.STATE_DIFFERS,
        transfer,
        reversal.created_at,
        f"reversed in Stripe by hand ({reversal.amount} {reversal.currency}), "
        f"{transfer.status} here",
        stripe_id=reversal.id,
    )
    return replace(finding, their_amount=reversal.amount, their_currency=reversal.currency)


def evaluate_mirakl_refund(
    refund: OurRow, *, is_waiting_in_mirakl: bool, now: datetime
) -> Finding | None:
    """A refund made in Stripe that Mirakl still lists as waiting for payment (PA12/SPA12).

    1. Not waiting in Mirakl, or not refunded in Stripe (no Stripe id): fine.
    2. PENDING and changed within ``NOT_TOLD_GRACE``: the refund job is between the Stripe
       refund and PA02 (fine).
    3. Otherwise MIRAKL_NOT_TOLD.
    """
    if not is_waiting_in_mirakl or not refund.stripe_id:
        return None
    changed = refund.modified_at or refund.created_at
    if refund.state == PENDING and now - changed < NOT_TOLD_GRACE:
        return None
    return _finding_on(
        FindingClass.MIRAKL_NOT_TOLD,
        refund,
        refund.created_at,
        f"refunded in Stripe ({refund.stripe_id}), still waiting for payment in Mirakl, "
        f"{refund.status} here",
        stripe_id=refund.stripe_id,
    )


def evaluate_order_refund(
    transfer: OurRow, mirakl_refund_id: str, mirakl_state: str, *, has_reversal_row: bool
) -> Finding | None:
    """An order refunded in Mirakl (``REFUNDED``/``OK``) whose CREATED transfer has no
    reversal row here: the seller keeps a share the customer got back (STATE_DIFFERS)."""
    if transfer.state != CREATED or has_reversal_row or mirakl_state not in MIRAKL_PAID_REFUND:
        return None
    finding = _finding_on(
        FindingClass.STATE_DIFFERS,
        transfer,
        transfer.created_at,
        f"refund {mirakl_refund_id} is {mirakl_state} in Mirakl, no reversal here",
        stripe_id=transfer.stripe_id,
    )
    return replace(finding, mirakl_id=mirakl_refund_id)
