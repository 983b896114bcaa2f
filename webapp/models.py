"""Database models: columns, relationships and status enums. No rules, no API calls.

Table and column names follow the reference connector (docs/reference-behaviour.md) so an
operator's data maps one to one; columns marked "ours" are what exactly-once money movement,
the console and the audit need beyond it. Status values are stored as the contract's strings.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.clock import utcnow
from webapp.extensions import db

REASON_LENGTH = 1024  # characters; longer reasons are truncated by transitions.truncate_reason


class PaymentMappingStatus(StrEnum):
    TO_CAPTURE = "to_capture"
    CAPTURED = "captured"
    CANCELED = "canceled"
    FAILED = "failed"


class TransferType(StrEnum):
    PRODUCT_ORDER = "TRANSFER_PRODUCT_ORDER"
    SERVICE_ORDER = "TRANSFER_SERVICE_ORDER"
    REFUND = "TRANSFER_REFUND"
    SUBSCRIPTION = "TRANSFER_SUBSCRIPTION"
    EXTRA_CREDITS = "TRANSFER_EXTRA_CREDITS"
    EXTRA_INVOICES = "TRANSFER_EXTRA_INVOICES"


ORDER_TRANSFER_TYPES = (TransferType.PRODUCT_ORDER, TransferType.SERVICE_ORDER)
INVOICE_TRANSFER_TYPES = (
    TransferType.SUBSCRIPTION,
    TransferType.EXTRA_CREDITS,
    TransferType.EXTRA_INVOICES,
)


class TransferStatus(StrEnum):
    PENDING = "TRANSFER_PENDING"
    CREATED = "TRANSFER_CREATED"
    FAILED = "TRANSFER_FAILED"
    ON_HOLD = "TRANSFER_ON_HOLD"
    ABORTED = "TRANSFER_ABORTED"
    IGNORED = "TRANSFER_IGNORED"


class RefundType(StrEnum):
    PRODUCT_ORDER = "REFUND_PRODUCT_ORDER"
    SERVICE_ORDER = "REFUND_SERVICE_ORDER"


class RefundStatus(StrEnum):
    PENDING = "REFUND_PENDING"
    CREATED = "REFUND_CREATED"
    FAILED = "REFUND_FAILED"
    ON_HOLD = "REFUND_ON_HOLD"
    ABORTED = "REFUND_ABORTED"


class PayoutStatus(StrEnum):
    PENDING = "PAYOUT_PENDING"
    CREATED = "PAYOUT_CREATED"
    FAILED = "PAYOUT_FAILED"
    ON_HOLD = "PAYOUT_ON_HOLD"
    ABORTED = "PAYOUT_ABORTED"


class JobOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # another run held the job's lock


class WebhookEventStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class FindingClass(StrEnum):
    """Ours: what kind of disagreement reconciliation found (``reconcile`` command)."""

    MISSING_IN_STRIPE = "missing_in_stripe"
    UNKNOWN_TO_US = "unknown_to_us"
    AMOUNT_DIFFERS = "amount_differs"
    STATE_DIFFERS = "state_differs"
    MIRAKL_NOT_TOLD = "mirakl_not_told"


class Timestamps:
    creation_datetime: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    modification_datetime: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow
    )


class MoneyAttempt:
    """Ours: what exactly-once needs on every money row.

    ``attempt`` grows only after Stripe definitively refused the previous attempt, so the
    idempotency key of a retried-after-crash attempt is the same as the lost one's.
    ``attempted_at`` is set when a worker claims the row; a PENDING row claimed long ago
    with no outcome is re-checked in Stripe before anything is sent again.
    """

    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime)


class AccountMapping(Timestamps, db.Model):
    """A Mirakl shop and the Stripe connected account that receives its money."""

    __tablename__ = "account_mapping"

    id: Mapped[int] = mapped_column(primary_key=True)
    mirakl_shop_id: Mapped[int] = mapped_column(Integer, unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    onboarding_token: Mapped[str | None] = mapped_column(String(255), index=True)
    payout_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    payin_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    ignored: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    # Ours
    mirakl_shop_name: Mapped[str | None] = mapped_column(String(255))
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    kyc_status: Mapped[str | None] = mapped_column(String(32))
    onboarding_url: Mapped[str | None] = mapped_column(Text)
    mirakl_sync_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    mirakl_sync_error: Mapped[str | None] = mapped_column(String(REASON_LENGTH))

    def __str__(self) -> str:
        return f"shop {self.mirakl_shop_id} → {self.stripe_account_id}"


class PendingShop(Timestamps, db.Model):
    """Ours: a Mirakl shop whose onboarding failed and must be retried by the next run."""

    __tablename__ = "pending_shop"

    id: Mapped[int] = mapped_column(primary_key=True)
    mirakl_shop_id: Mapped[int] = mapped_column(Integer, unique=True)
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __str__(self) -> str:
        return f"shop {self.mirakl_shop_id} (to retry: {self.reason})"


class Config(db.Model):
    """Checkpoints, one row per key (the reference's `config` table)."""

    __tablename__ = "config"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    value: Mapped[str | None] = mapped_column(String(255))

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class PaymentMapping(Timestamps, MoneyAttempt, db.Model):
    """A Stripe charge and the Mirakl commercial order it pays for."""

    __tablename__ = "payment_mapping"

    id: Mapped[int] = mapped_column(primary_key=True)
    mirakl_commercial_order_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_charge_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(
        String(32), default=PaymentMappingStatus.TO_CAPTURE, index=True
    )
    stripe_amount: Mapped[int | None] = mapped_column(BigInteger)
    # Ours
    currency: Mapped[str | None] = mapped_column(String(3))
    status_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)
    mirakl_debit_status: Mapped[str | None] = mapped_column(String(16))  # PA01 sent: OK/REFUSED

    def __str__(self) -> str:
        return f"payment {self.stripe_charge_id} (order {self.mirakl_commercial_order_id})"


class StripeTransfer(Timestamps, MoneyAttempt, db.Model):
    """A transfer between the platform and a connected account, or a reversal of one."""

    __tablename__ = "stripe_transfer"
    __table_args__ = (
        UniqueConstraint("type", "mirakl_id", name="transfer"),
        Index("ix_stripe_transfer_type_status", "type", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mirakl_id: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(32))
    account_mapping_id: Mapped[int | None] = mapped_column(
        ForeignKey("account_mapping.id", ondelete="SET NULL"), index=True
    )
    transfer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    transaction_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    currency: Mapped[str | None] = mapped_column(String(3))
    mirakl_created_date: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # Ours
    mirakl_shop_id: Mapped[int | None] = mapped_column(Integer, index=True)
    transfer_group: Mapped[str | None] = mapped_column(String(255), index=True)

    account_mapping: Mapped[AccountMapping | None] = relationship()

    def __str__(self) -> str:
        return f"{self.type} {self.mirakl_id}"


class StripeRefund(Timestamps, MoneyAttempt, db.Model):
    """A customer refund requested by Mirakl (PA12/SPA12) and its validation (PA02/SPA02)."""

    __tablename__ = "stripe_refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32), default=RefundType.PRODUCT_ORDER)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    mirakl_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    mirakl_commercial_order_id: Mapped[str | None] = mapped_column(String(255), index=True)
    mirakl_order_id: Mapped[str | None] = mapped_column(String(255), index=True)
    mirakl_order_line_id: Mapped[str | None] = mapped_column(String(255))
    transaction_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    mirakl_validation_time: Mapped[datetime | None] = mapped_column(DateTime)
    # Ours
    mirakl_shop_id: Mapped[int | None] = mapped_column(Integer, index=True)

    def __str__(self) -> str:
        return f"refund {self.mirakl_refund_id} (order {self.mirakl_order_id})"


class StripePayout(Timestamps, MoneyAttempt, db.Model):
    """A payout of a seller's balance to their bank, from one Mirakl invoice."""

    __tablename__ = "stripe_payout"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_mapping_id: Mapped[int | None] = mapped_column(
        ForeignKey("account_mapping.id", ondelete="SET NULL"), index=True
    )
    amount: Mapped[int | None] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3))
    mirakl_invoice_id: Mapped[int] = mapped_column(Integer, unique=True)
    payout_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    mirakl_created_date: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # Ours
    mirakl_shop_id: Mapped[int | None] = mapped_column(Integer, index=True)

    account_mapping: Mapped[AccountMapping | None] = relationship()

    def __str__(self) -> str:
        return f"payout for invoice {self.mirakl_invoice_id}"


class OperationEvent(db.Model):
    """Ours: the history of every status change of a money row (console detail view)."""

    __tablename__ = "operation_event"
    __table_args__ = (Index("ix_operation_event_operation", "operation", "operation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))  # transfer, refund, payout, payment
    operation_id: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    attempt: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    def __str__(self) -> str:
        return f"{self.operation} {self.operation_id}: {self.from_status} → {self.to_status}"


class JobRun(db.Model):
    """Ours: the audit of every job run, whoever started it."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))  # cli, scheduler, console
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16), default=JobOutcome.RUNNING, index=True)
    summary: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[str | None] = mapped_column(Text)  # JSON object: stage → {status: count}
    error: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    host: Mapped[str | None] = mapped_column(String(128))

    def __str__(self) -> str:
        return f"{self.job} #{self.id} ({self.outcome})"


class Lease(db.Model):
    """Ours: a named lock with an expiry, shared by CLI runs and workers."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class WebhookEvent(db.Model):
    """Ours: the Stripe event inbox; the unique event id makes redeliveries no-ops."""

    __tablename__ = "webhook_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    endpoint: Mapped[str] = mapped_column(String(16))  # sellers, operator
    account: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=WebhookEventStatus.RECEIVED, index=True)
    error: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"


class Notification(db.Model):
    """Ours: the outbox of operator notifications, written in the transaction that caused them."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[str] = mapped_column(Text)  # JSON
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)

    def __str__(self) -> str:
        return f"{self.type} #{self.id} ({self.status})"


class ReconciliationFinding(db.Model):
    """Ours: one disagreement between our rows, Stripe and Mirakl, as ``reconcile`` saw it.

    ``finding_key`` names the disagreement (class, our row, the Stripe object), so a later
    run that sees it again updates ``last_seen_at``; a later run whose window covers
    ``subject_at`` and no longer sees it sets ``resolved_at``. Never moves money.
    """

    __tablename__ = "reconciliation_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_key: Mapped[str] = mapped_column(String(255), unique=True)
    finding_class: Mapped[str] = mapped_column(String(32), index=True)
    operation: Mapped[str] = mapped_column(String(16))  # transfer, reversal, refund, payout
    operation_id: Mapped[int | None] = mapped_column(Integer)  # our row, when one is involved
    mirakl_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_account_id: Mapped[str | None] = mapped_column(String(255))
    our_amount: Mapped[int | None] = mapped_column(BigInteger)
    their_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    their_currency: Mapped[str | None] = mapped_column(String(3))
    detail: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    subject_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # when the thing happened
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    last_run: Mapped[str | None] = mapped_column(String(64))  # the run that last saw it

    def __str__(self) -> str:
        return f"{self.finding_class} {self.operation} {self.mirakl_id or self.stripe_id}"


class SetupCheck(db.Model):
    """Ours: one run of ``connector doctor`` (CLI, schedule or console) and its check lines."""

    __tablename__ = "setup_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # cli, scheduler, console
    outcome: Mapped[str] = mapped_column(String(8))  # the worst level: ok, warn, FAIL
    results: Mapped[str] = mapped_column(Text)  # JSON list of {name, level, message}

    def __str__(self) -> str:
        return f"setup check #{self.id} ({self.outcome})"


class OperatorUser(db.Model):
    """Ours: a console user; only a password hash is stored."""

    __tablename__ = "operator_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    # viewer, operator or admin (services/access/roles.py); earlier users were all admins.
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        """A disabled console user cannot log in, and a session of theirs stops working."""
        return self.disabled_at is None

    def get_id(self) -> str:
        return str(self.id)

    def __str__(self) -> str:
        return self.email


class AuditEvent(db.Model):
    """Ours: one operator action (retry, abort, run now, login, user change…), append-only.

    Nothing updates a row (a trigger refuses it); the console shows them read-only.
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)  # e-mail, or "cli"
    action: Mapped[str] = mapped_column(String(32), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))  # transfer, shop, user, job…
    target_id: Mapped[str | None] = mapped_column(String(64))  # our row id, job or key name
    mirakl_id: Mapped[str | None] = mapped_column(String(255), index=True)
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    outcome: Mapped[str | None] = mapped_column(String(REASON_LENGTH))

    def __str__(self) -> str:
        return f"{self.actor}: {self.action} {self.target_type or ''} {self.mirakl_id or ''}"


class ConsoleSession(db.Model):
    """Ours: one console login, held server-side so that it can be revoked.

    The signed cookie carries a random handle; only its SHA-256 is stored. The row is
    deleted at logout; a password change (``credential_stamp`` no longer matches) and the
    idle and absolute timeouts end it too.
    """

    __tablename__ = "console_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_user_id: Mapped[int] = mapped_column(
        ForeignKey("operator_user.id", ondelete="CASCADE"), index=True
    )
    credential_stamp: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def __str__(self) -> str:
        return f"session {self.id} of operator {self.operator_user_id}"


class LoginThrottle(db.Model):
    """Ours: failed console logins counted per key (client IP, or account and client IP).

    Counted with one atomic upsert per failure, so concurrent attempts cannot slip past
    the limit (``services/console_security/throttle.py`` holds the policy).
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    window_started_at: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} failures"
