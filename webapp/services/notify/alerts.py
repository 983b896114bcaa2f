"""Alert e-mails to ``TECHNICAL_ALERT_EMAIL``: the notification-endpoint-down e-mail, the
critical-error e-mail of a failed job run, and the daily digest of failed operations.

The content is built by pure functions from plain values (templates under
``templates/mail/``, an HTML part and a plain-text part); sending goes through
``mailer.send_mail``, whose failures are logged and never break the caller.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from flask import current_app
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    PayoutStatus,
    ReconciliationFinding,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
)
from webapp.services.ledger import leases
from webapp.services.ledger.minor_units import format_amount
from webapp.services.notify import mailer
from webapp.services.notify.delivery import DeliveryResult

log = logging.getLogger(__name__)

ENDPOINT_DOWN_SUBJECT = "[Stripe-Mirakl] A notification error Occurred!"
DIGEST_SUBJECT = "[Stripe-Mirakl] Transfer failed"
ENDPOINT_DOWN_LEASE = "mail:notification-endpoint-down"
CRITICAL_ERROR_SUBJECT = "[Stripe-Mirakl] An Error Occurred! %s"
CRITICAL_ERROR_LEASE = "mail:critical-error:%s"  # one per job
CRITICAL_ERROR_COOLDOWN = 3600  # seconds between two critical-error e-mails of one job
SUBJECT_ERROR_CHARS = 150  # the error's first line is cut to this in the subject
DIGEST_LIMIT = 100  # rows listed per kind; the e-mail counts (and links to) the rest

TEMPLATES = Environment(
    loader=FileSystemLoader(
        os.path.join(os.path.dirname(__file__), "..", "..", "templates", "mail")
    ),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


# ---------------------------------------------------------------- endpoint down


def redact_url(url: str) -> str:
    """The URL without credentials, with query values masked: safe for e-mails and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message) with the URL's credentials and query values masked."""
    parts = urlsplit(url)
    text = text.replace(url, redact_url(url))
    if parts.query:
        text = text.replace(parts.query, urlsplit(redact_url(url)).query)
    if parts.password and len(parts.password) >= 4:
        text = text.replace(parts.password, "***")
    return text


def build_endpoint_down_email(
    url: str,
    notification_id: int,
    tries: int,
    error: str | None,
    response_body: str | None,
    original: dict[str, Any],
) -> Email:
    """The e-mail sent when a notification could not be delivered after all its tries."""
    values = {
        "endpoint": redact_url(url),
        "notification_id": notification_id,
        "tries": tries,
        "error": error or "unknown error",
        "response_body": response_body,
        "original": json.dumps(original, indent=4, sort_keys=True, ensure_ascii=False),
        "type": original.get("type"),
    }
    return Email(
        subject=ENDPOINT_DOWN_SUBJECT,
        text=TEMPLATES.get_template("endpoint_down.txt").render(values),
        html=TEMPLATES.get_template("endpoint_down.html").render(values),
    )


def send_endpoint_down_alert(
    url: str, notification_id: int, tries: int, result: DeliveryResult, original: dict[str, Any]
) -> bool:
    """E-mail the technical address that the endpoint is down; True when an e-mail went out.

    At most one per ``MAIL_ON_NOTIFICATION_ENDPOINT_DOWN_COOLDOWN`` minutes across every
    worker and CLI run: the cooldown is a database lease that is taken and never released,
    so it simply expires (0 = no throttle).
    """
    cfg = current_app.config
    if not cfg["MAIL_ON_NOTIFICATION_ENDPOINT_DOWN"] or not mailer.is_enabled():
        return False
    cooldown = cfg["MAIL_ON_NOTIFICATION_ENDPOINT_DOWN_COOLDOWN"]
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    if cooldown and not leases.acquire(ENDPOINT_DOWN_LEASE, holder, ttl=cooldown * 60):
        log.info("notification endpoint down: e-mail skipped, one was sent < %s min ago", cooldown)
        return False
    message = build_endpoint_down_email(
        url, notification_id, tries, result.error, result.response_body, original
    )
    return mailer.send_mail(message.subject, message.text, message.html)


# ---------------------------------------------------------------- critical error


def build_critical_error_email(
    job: str, run_id: int, host: str, error: str, base_url: str
) -> Email:
    """The reference's ``[Stripe-Mirakl] An Error Occurred! <message>`` e-mail for a job run
    that stopped on an error it cannot handle."""
    first_line = (error.strip().splitlines() or ["unknown error"])[0]
    if len(first_line) > SUBJECT_ERROR_CHARS:
        first_line = first_line[: SUBJECT_ERROR_CHARS - 1] + "…"
    values = {
        "job": job,
        "run_id": run_id,
        "host": host,
        "error": error,
        "cooldown_minutes": CRITICAL_ERROR_COOLDOWN // 60,
        "runs_url": f"{base_url}/console/job_runs/",
    }
    return Email(
        subject=CRITICAL_ERROR_SUBJECT % first_line,
        text=TEMPLATES.get_template("critical_error.txt").render(values),
        html=TEMPLATES.get_template("critical_error.html").render(values),
    )


def send_critical_error_alert(job: str, run_id: int, host: str, error: str) -> bool:
    """E-mail the technical address that a job run failed; True when an e-mail went out.

    A job failing on every run (every minute for ``sync-onboarding``) mails once per
    ``CRITICAL_ERROR_COOLDOWN``: a per-job database lease that is taken and never released,
    shared by every worker and CLI run, so it simply expires.
    """
    if not mailer.is_enabled():
        return False
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    if not leases.acquire(CRITICAL_ERROR_LEASE % job, holder, ttl=CRITICAL_ERROR_COOLDOWN):
        log.info("%s run %s: critical-error e-mail skipped, one was sent < 1 h ago", job, run_id)
        return False
    base_url = current_app.config["PUBLIC_BASE_URL"]
    message = build_critical_error_email(job, run_id, host, error, base_url)
    return mailer.send_mail(message.subject, message.text, message.html)


# ---------------------------------------------------------------- failed-operations digest


@dataclass(frozen=True)
class DigestRow:
    """One failed operation as the digest shows it."""

    id: int
    mirakl: str
    type: str
    amount: str
    status: str
    reason: str
    url: str


@dataclass(frozen=True)
class DigestSection:
    """The failed operations of one kind (transfers, refunds or payouts)."""

    title: str
    rows: tuple[DigestRow, ...]
    total: int
    list_url: str

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def _console_url(base_url: str, view: str, row_id: int) -> str:
    return f"{base_url}/console/{view}/details/?id={row_id}"


def transfer_digest_row(row: Any, base_url: str) -> DigestRow:
    """A failed transfer: its Mirakl id (order, refund or invoice) and shop."""
    shop = f" (shop {row.mirakl_shop_id})" if row.mirakl_shop_id is not None else ""
    return DigestRow(
        id=row.id,
        mirakl=f"{row.mirakl_id}{shop}",
        type=row.type,
        amount=format_amount(row.amount, row.currency),
        status=row.status,
        reason=row.status_reason or "",
        url=_console_url(base_url, "transfers", row.id),
    )


def refund_digest_row(row: Any, base_url: str) -> DigestRow:
    """A failed refund: its Mirakl refund id and order id."""
    order = f" (order {row.mirakl_order_id})" if row.mirakl_order_id else ""
    return DigestRow(
        id=row.id,
        mirakl=f"refund {row.mirakl_refund_id}{order}",
        type=row.type,
        amount=format_amount(row.amount, row.currency),
        status=row.status,
        reason=row.status_reason or "",
        url=_console_url(base_url, "refunds", row.id),
    )


def payout_digest_row(row: Any, base_url: str) -> DigestRow:
    """A failed payout: its Mirakl invoice id and shop."""
    shop = f" (shop {row.mirakl_shop_id})" if row.mirakl_shop_id is not None else ""
    return DigestRow(
        id=row.id,
        mirakl=f"invoice {row.mirakl_invoice_id}{shop}",
        type="PAYOUT",
        amount=format_amount(row.amount, row.currency),
        status=row.status,
        reason=row.status_reason or "",
        url=_console_url(base_url, "payouts", row.id),
    )


@dataclass(frozen=True)
class OpenSummary:
    """Open findings for the digest: count per class, total per currency (both sides)."""

    counts: dict[str, int]
    totals: dict[str, tuple[int, int]]  # currency → (our amounts, their amounts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def summarize_open_findings() -> OpenSummary:
    """Counts per class and amount totals per currency of the open findings (two queries)."""
    open_ = ReconciliationFinding.resolved_at.is_(None)
    counts = dict(
        db.session.execute(
            select(ReconciliationFinding.finding_class, func.count())
            .where(open_)
            .group_by(ReconciliationFinding.finding_class)
            .order_by(ReconciliationFinding.finding_class)
        ).all()
    )
    totals = {
        currency or "?": (int(ours or 0), int(theirs or 0))
        for currency, ours, theirs in db.session.execute(
            select(
                ReconciliationFinding.currency,
                func.sum(ReconciliationFinding.our_amount),
                func.sum(ReconciliationFinding.their_amount),
            )
            .where(open_)
            .group_by(ReconciliationFinding.currency)
            .order_by(ReconciliationFinding.currency)
        ).all()
    }
    return OpenSummary(counts=counts, totals=totals)


@dataclass(frozen=True)
class ReconciliationDigest:
    """The digest's reconciliation section: open findings per class, totals per currency."""

    counts: dict[str, int]
    totals: tuple[tuple[str, str, str], ...]  # (currency, our total, their total), formatted
    list_url: str

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def reconciliation_digest(
    counts: dict[str, int], totals: dict[str, tuple[int, int]], base_url: str
) -> ReconciliationDigest:
    """Open findings as the digest shows them (amounts in major units with currency)."""
    return ReconciliationDigest(
        counts=dict(counts),
        totals=tuple(
            (currency.upper(), format_amount(ours, currency), format_amount(theirs, currency))
            for currency, (ours, theirs) in sorted(totals.items())
        ),
        list_url=f"{base_url}/console/reconciliation/",
    )


def build_failed_operations_digest(
    sections: Sequence[DigestSection], reconciliation: ReconciliationDigest | None = None
) -> Email | None:
    """The daily digest of failed operations and open reconciliation findings, or None when
    there is nothing to report."""
    shown = [section for section in sections if section.total]
    if reconciliation is not None and not reconciliation.total:
        reconciliation = None
    if not shown and reconciliation is None:
        return None
    values = {
        "sections": shown,
        "total": sum(section.total for section in shown),
        "reconciliation": reconciliation,
    }
    return Email(
        subject=DIGEST_SUBJECT,
        text=TEMPLATES.get_template("failed_operations.txt").render(values),
        html=TEMPLATES.get_template("failed_operations.html").render(values),
    )


DIGEST_KINDS = (
    ("Transfers", "transfers", StripeTransfer, TransferStatus.FAILED, transfer_digest_row),
    ("Refunds", "refunds", StripeRefund, RefundStatus.FAILED, refund_digest_row),
    ("Payouts", "payouts", StripePayout, PayoutStatus.FAILED, payout_digest_row),
)


def list_failed_operations(limit: int = DIGEST_LIMIT) -> list[DigestSection]:
    """Failed transfers, refunds and payouts (oldest first, ``limit`` rows of each)."""
    base_url = current_app.config["PUBLIC_BASE_URL"]
    sections = []
    for title, view, model, failed, to_row in DIGEST_KINDS:
        where = model.status == failed
        total = db.session.execute(select(func.count()).select_from(model).where(where)).scalar()
        rows = db.session.execute(select(model).where(where).order_by(model.id).limit(limit))
        sections.append(
            DigestSection(
                title=title,
                rows=tuple(to_row(row, base_url) for row in rows.scalars()),
                total=total or 0,
                list_url=f"{base_url}/console/{view}/",
            )
        )
    return sections


@dataclass(frozen=True)
class DigestOutcome:
    counts: dict[str, int]
    is_sent: bool


def send_failed_operations_digest() -> DigestOutcome:
    """E-mail the digest of failed operations and open reconciliation findings when there is
    any; say what was found and sent."""
    sections = list_failed_operations()
    counts = {section.title.lower(): section.total for section in sections}
    summary = summarize_open_findings()
    reconciliation = reconciliation_digest(
        summary.counts, summary.totals, current_app.config["PUBLIC_BASE_URL"]
    )
    if reconciliation.total:
        counts["reconciliation findings"] = reconciliation.total
    message = build_failed_operations_digest(sections, reconciliation)
    if message is None:
        return DigestOutcome(counts, False)
    return DigestOutcome(counts, mailer.send_mail(message.subject, message.text, message.html))
