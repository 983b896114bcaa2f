"""The operator console (Flask-Admin) under ``/console``, behind the login of ``views/auth``.

``init_app`` builds the ``Admin`` and its views for one app (never at import time). Views
are declarative; behaviour lives in three base classes: ``ConsoleModelView`` (secured,
read-only, no full-table count per page), ``MoneyView`` (retry / abort / ignore actions on
transfers, refunds, payouts) and ``ShopView``'s actions. The services do the work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, flash, request
from flask_admin import Admin, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from redis import RedisError
from rq import Worker
from sqlalchemy import Integer, false, or_, select

from webapp.clock import utcnow
from webapp.errors import ConnectorError
from webapp.extensions import db
from webapp.jobs.scheduler import schedules
from webapp.models import (
    AccountMapping,
    AuditEvent,
    FindingClass,
    JobOutcome,
    JobRun,
    Notification,
    NotificationStatus,
    OperationEvent,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutStatus,
    ReconciliationFinding,
    RefundStatus,
    RefundType,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
    WebhookEvent,
    WebhookEventStatus,
)
from webapp.services.access import audit
from webapp.services.access.roles import ACT
from webapp.services.dispatch import retries
from webapp.services.onboarding import kyc_push
from webapp.services.onboarding import links as onboarding_links
from webapp.services.queueing.queues import MONEY_QUEUE, get_queue
from webapp.views import access, timeline
from webapp.views import console_reconciliation as findings
from webapp.views.auth import SecuredMixin
from webapp.views.console_columns import (
    amount_formatter,
    duration_formatter,
    environment,
    json_formatter,
    onboarding_formatter,
    shop_formatter,
    status_formatter,
    story_link,
    stripe_link,
    tries_formatter,
    type_formatter,
    url_formatter,
)
from webapp.views.console_export import csv_response, major, plain, upper
from webapp.views.console_rules import job_of, mirakl_label, next_run
from webapp.views.dashboard import DashboardView, JobsView
from webapp.views.security import csp_nonce

log = logging.getLogger(__name__)

PAGE_SIZE = 50  # rows per list page
HISTORY_LIMIT = 200  # events shown on a detail page


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(member, member) for member in enum]


# ---------------------------------------------------------------- base views


class ConsoleModelView(SecuredMixin, ModelView):
    """Read-only list with details; pages never count the whole table."""

    can_create = can_edit = can_delete = False
    can_view_details = True
    can_set_page_size = True
    simple_list_pager = True
    named_filter_urls = True
    page_size = PAGE_SIZE
    page_size_options = (20, 50, 100)
    column_default_sort = ("id", True)
    column_display_pk = True
    details_template = "admin/money/details.html"
    list_template = "admin/console_list.html"
    history_operation: str | None = None  # OperationEvent.operation shown on the detail page
    # CSV export: (header, getter) pairs, Mirakl ids first; empty means "the list's columns".
    export_columns_csv: tuple[tuple[str, Callable[[Any], Any]], ...] = ()

    def csv_columns(self) -> list[tuple[str, Callable[[Any], Any]]]:
        if self.export_columns_csv:
            return list(self.export_columns_csv)
        names = [name for name, _ in self._list_columns if hasattr(self.model, name)]
        return [(name, plain(name)) for name in names]

    # Money tables hold millions of rows: their search matches ids exactly (indexed), or by
    # prefix with a trailing "*", instead of Flask-Admin's ILIKE '%term%' (a full scan).
    exact_search = False

    def _apply_search(self, query, count_query, joins, count_joins, search):  # noqa: ANN001
        if not self.exact_search:
            return super()._apply_search(query, count_query, joins, count_joins, search)
        term = search.strip()
        conditions = []
        for column, _ in self._search_fields:
            if isinstance(column.type, Integer):
                if term.isdecimal() and len(term) < 10:
                    conditions.append(column == int(term))
            elif term.endswith("*") and len(term) > 1:
                conditions.append(column.startswith(term[:-1], autoescape=True))
            else:
                conditions.append(column == term)
        match = or_(*conditions) if conditions else false()
        query = query.filter(match)
        if count_query is not None:
            count_query = count_query.filter(match)
        return query, count_query, joins, count_joins

    @expose("/export.csv")
    def export_csv(self) -> Any:
        """The list as CSV, with the list's filters, search and sort applied (streamed)."""
        args = self._get_list_extra_args()
        sort = self._get_column_by_idx(args.sort)
        _, query = self.get_list(
            None, sort[0] if sort else None, args.sort_desc, args.search, args.filters,
            execute=False, page_size=0,
        )  # fmt: skip
        stamp = utcnow().strftime("%Y%m%d-%H%M%S")
        return csv_response(f"{self.endpoint}-{stamp}.csv", self.csv_columns(), query)

    def history(self, row: Any) -> list[OperationEvent]:
        """The row's status changes, oldest first."""
        if not self.history_operation:
            return []
        return list(
            db.session.execute(
                select(OperationEvent)
                .where(
                    OperationEvent.operation == self.history_operation,
                    OperationEvent.operation_id == row.id,
                )
                .order_by(OperationEvent.id)
                .limit(HISTORY_LIMIT)
            ).scalars()
        )


def _ids(raw: list[str]) -> list[int]:
    return [int(i) for i in raw if str(i).isdecimal()]


def _labels(kind: str, ids: Any) -> dict[int, str]:
    """Row id → the Mirakl name the operator knows (order 1234-A, invoice 93117)."""
    model = retries.get_kind(kind).model
    wanted = sorted({int(i) for i in ids})
    rows = db.session.execute(select(model).where(model.id.in_(wanted))).scalars()
    return {row.id: mirakl_label(kind, row) for row in rows}


def _flash_unchanged(kind: str, unchanged: dict[int, str], limit: int = 5) -> None:
    labels = _labels(kind, list(unchanged)[:limit])
    for row_id, why in list(unchanged.items())[:limit]:
        flash(f"{labels.get(row_id, f'{kind} row {row_id}').capitalize()}: {why}", "warning")
    if len(unchanged) > limit:
        flash(f"… and {len(unchanged) - limit} more rows unchanged", "warning")


def _next_runs(kind: str, ids: Any) -> str:
    """When the scheduled jobs that send these rows run next, e.g. "process-payout at …"."""
    model = retries.get_kind(kind).model
    types = {None}
    if kind == "transfer":
        types = set(db.session.execute(select(model.type).where(model.id.in_(ids))).scalars())
    crons, now = schedules(), utcnow()
    parts = []
    for job in sorted({job_of(kind, t) for t in types}):
        cron = crons.get(job)
        when = f"{next_run(cron, now):%Y-%m-%d %H:%M} UTC" if cron else "never (not scheduled)"
        parts.append(f"{job} at {when}")
    return ", ".join(parts)


def _has_worker() -> bool:
    try:
        return Worker.count(queue=get_queue(MONEY_QUEUE)) > 0
    except RedisError:
        return False


MONEY_TAIL = (
    ("amount", major("amount")), ("currency", upper("currency")), ("status", plain("status")),
    ("status_reason", plain("status_reason")), ("attempt", plain("attempt")),
)  # fmt: skip
DATES = (
    ("creation_datetime", plain("creation_datetime")),
    ("modification_datetime", plain("modification_datetime")),
)


class MoneyView(ConsoleModelView):
    """Transfers, refunds, payouts: retry (single and bulk), abort or ignore with a reason."""

    kind = "transfer"  # retries.KINDS key
    exact_search = True
    list_template = "admin/money/list.html"
    column_labels = {
        "status_reason": "Reason",
        "modification_datetime": "Updated",
        "tries": "Tries",
    }
    column_formatters = {
        "amount": amount_formatter,
        "status": status_formatter,
        "shop": shop_formatter,
        "tries": tries_formatter,
    }

    def is_retryable(self, row: Any) -> bool:
        return retries.refusal(retries.get_kind(self.kind), row, row.id) is None

    def is_action_allowed(self, name: str) -> bool:
        return self.allows(ACT) and (name != "ignore" or self.kind == "transfer")

    def _audit(self, action: str, ids: list[int], outcome: Any, reason: str | None) -> None:
        """One audit row per row the operator asked about, with what came of it."""
        labels = _labels(self.kind, ids)
        done = set(getattr(outcome, "changed", ()))
        for row_id in ids:
            if row_id in outcome.unchanged:
                result = f"unchanged: {outcome.unchanged[row_id]}"
            elif row_id in getattr(outcome, "not_queued", ()):
                result = "pending, not queued (Redis unavailable)"
            else:
                result = "done" if row_id in done else "queued"
            audit.record(action, actor=self._actor(), target_type=self.kind, target_id=row_id,
                         mirakl_id=labels.get(row_id), reason=reason, outcome=result)  # fmt: skip
        db.session.commit()

    def _actor(self) -> str:
        return current_user.email

    @action("retry", "Retry", "Retry the selected rows? CREATED rows are never retried.")
    def action_retry(self, ids: list[str]) -> None:
        outcome = retries.retry(self.kind, _ids(ids), actor=self._actor())
        self._audit("retry", _ids(ids), outcome, None)
        sent = sorted(set(_ids(ids)) - set(outcome.unchanged) - set(outcome.not_queued))
        if outcome.queued:
            flash(f"{outcome.queued} {self.kind}(s) queued for retry.", "success")
            if not _has_worker():
                flash(
                    f"No worker is running: the queued {self.kind}(s) wait for one. The next "
                    f"scheduled run also sends them: {_next_runs(self.kind, sent)}.",
                    "warning",
                )
        if outcome.not_queued:
            flash(
                f"{len(outcome.not_queued)} {self.kind}(s) are PENDING but could not be queued "
                "(Redis unavailable): the next run of the job will send them: "
                f"{_next_runs(self.kind, list(outcome.not_queued))}.",
                "error",
            )
        if not outcome.queued and not outcome.not_queued:
            flash(f"No {self.kind} was queued.", "warning")
        _flash_unchanged(self.kind, outcome.unchanged)

    def _decide(self, ids: list[str], decide: Callable[..., Any], done: str) -> None:
        reason = request.form.get("reason", "")
        try:
            outcome = decide(self.kind, _ids(ids), reason, actor=self._actor())
        except ValueError as exc:
            flash(f"Nothing changed: {exc}.", "error")
            return
        self._audit(decide.__name__.removesuffix("_rows"), _ids(ids), outcome, reason)
        if outcome.changed:
            flash(f"{len(outcome.changed)} {self.kind}(s) {done}.", "success")
        _flash_unchanged(self.kind, outcome.unchanged)

    @action("abort", "Abort (give a reason)", "Abort the selected rows? They will never be paid.")
    def action_abort(self, ids: list[str]) -> None:
        self._decide(ids, retries.abort_rows, "aborted")

    @action("ignore", "Ignore (give a reason)", "Ignore the selected transfers for good?")
    def action_ignore(self, ids: list[str]) -> None:
        self._decide(ids, retries.ignore_rows, "ignored")


class ShopActionsView(ConsoleModelView):
    """Shops: refresh the onboarding link, push the KYC status to Mirakl."""

    def is_action_allowed(self, name: str) -> bool:
        return self.allows(ACT)

    def _call(self, ids: list[str], func: Callable[[int], Any], done: str) -> None:
        ok = 0
        action_name = {"refresh_onboarding_link": "new_link"}.get(func.__name__, func.__name__)
        for mapping_id in _ids(ids):
            try:
                func(mapping_id)
                ok += 1
                result = done
            except ConnectorError as exc:
                db.session.rollback()
                result = f"failed: {exc}"
            mapping = db.session.get(AccountMapping, mapping_id)
            shop = mapping.mirakl_shop_id if mapping else mapping_id
            if result != done:
                flash(f"Shop {shop}: {result.removeprefix('failed: ')}", "error")
            audit.record(
                action_name, actor=current_user.email, target_type="shop",
                target_id=mapping_id, mirakl_id=f"shop {shop}", outcome=result,
            )  # fmt: skip
        db.session.commit()
        if ok:
            flash(f"{ok} shop(s): {done}.", "success")

    @action("refresh_link", "Refresh onboarding link")
    def action_refresh_link(self, ids: list[str]) -> None:
        self._call(ids, onboarding_links.refresh_onboarding_link, "onboarding link refreshed")

    @action("push_kyc", "Push KYC status to Mirakl")
    def action_push_kyc(self, ids: list[str]) -> None:
        self._call(ids, kyc_push.push_kyc_status, "KYC status sent to Mirakl")


# ---------------------------------------------------------------- one view per model


class ShopView(ShopActionsView):
    column_list = (
        "mirakl_shop_id", "mirakl_shop_name", "stripe_account_id", "onboarding",
        "onboarding_url", "payout_enabled", "payin_enabled", "disabled_reason", "kyc_status",
        "ignored", "modification_datetime",
    )  # fmt: skip
    column_exclude_list = ("onboarding_token",)
    column_details_exclude_list = ("onboarding_token",)
    column_labels = {
        "stripe_account_id": "Stripe account",
        "onboarding_url": "Current link",
        "payin_enabled": "Charges enabled",
        "payout_enabled": "Payouts enabled",
    }
    column_formatters = {
        "mirakl_shop_id": shop_formatter,
        "stripe_account_id": stripe_link(),
        "onboarding": onboarding_formatter,
        "onboarding_url": url_formatter,
    }
    column_filters = (
        "mirakl_shop_id", "payout_enabled", "payin_enabled", "ignored", "disabled_reason",
        "kyc_status",
    )  # fmt: skip
    column_searchable_list = ("mirakl_shop_name", "stripe_account_id")


class TransferView(MoneyView):
    kind = "transfer"
    history_operation = "transfer"
    export_columns_csv = (
        ("mirakl_id", plain("mirakl_id")), ("mirakl_shop_id", plain("mirakl_shop_id")),
        ("type", plain("type")), *MONEY_TAIL, ("stripe_transfer_id", plain("transfer_id")),
        ("transaction_id", plain("transaction_id")), ("transfer_group", plain("transfer_group")),
        ("mirakl_created_date", plain("mirakl_created_date")), *DATES, ("id", plain("id")),
    )  # fmt: skip
    # What an operator reads first fits 1366 px: Mirakl id, shop, amount, status, reason.
    column_list = (
        "mirakl_id", "shop", "amount", "status", "status_reason", "tries", "transfer_id",
        "type", "modification_datetime",
    )  # fmt: skip
    column_labels = {
        **MoneyView.column_labels,
        "mirakl_id": "Mirakl id",
        "transfer_id": "Stripe transfer",
        "transaction_id": "Charge / transfer",
    }
    column_formatters = {
        **MoneyView.column_formatters,
        "type": type_formatter,
        "mirakl_id": story_link,
        "transfer_id": stripe_link(),
        "transaction_id": stripe_link(),
    }
    column_filters = (
        FilterEqual(StripeTransfer.status, "Status", options=_choices(TransferStatus)),
        FilterEqual(StripeTransfer.type, "Type", options=_choices(TransferType)),
        "mirakl_shop_id", "currency", "creation_datetime", "mirakl_created_date",
    )  # fmt: skip
    column_searchable_list = ("mirakl_id", "transfer_id", "transaction_id", "transfer_group")


class RefundView(MoneyView):
    kind = "refund"
    history_operation = "refund"
    export_columns_csv = (
        ("mirakl_refund_id", plain("mirakl_refund_id")),
        ("mirakl_order_id", plain("mirakl_order_id")),
        ("mirakl_commercial_order_id", plain("mirakl_commercial_order_id")),
        ("mirakl_shop_id", plain("mirakl_shop_id")), ("type", plain("type")), *MONEY_TAIL,
        ("stripe_refund_id", plain("stripe_refund_id")),
        ("transaction_id", plain("transaction_id")),
        ("mirakl_validation_time", plain("mirakl_validation_time")), *DATES, ("id", plain("id")),
    )  # fmt: skip
    column_list = (
        "mirakl_refund_id", "mirakl_order_id", "shop", "amount", "status", "status_reason",
        "tries", "stripe_refund_id", "modification_datetime",
    )  # fmt: skip
    column_labels = {
        **MoneyView.column_labels,
        "mirakl_refund_id": "Mirakl refund",
        "mirakl_order_id": "Mirakl order",
        "stripe_refund_id": "Stripe refund",
        "transaction_id": "Charge",
    }
    column_formatters = {
        **MoneyView.column_formatters,
        "mirakl_refund_id": story_link,
        "mirakl_order_id": story_link,
        "stripe_refund_id": stripe_link(),
        "transaction_id": stripe_link(),
    }
    column_filters = (
        FilterEqual(StripeRefund.status, "Status", options=_choices(RefundStatus)),
        FilterEqual(StripeRefund.type, "Type", options=_choices(RefundType)),
        "mirakl_shop_id", "currency", "creation_datetime",
    )  # fmt: skip
    column_searchable_list = (
        "mirakl_refund_id", "mirakl_order_id", "mirakl_commercial_order_id", "stripe_refund_id",
        "transaction_id",
    )  # fmt: skip


class PayoutView(MoneyView):
    kind = "payout"
    history_operation = "payout"
    column_select_related_list = (StripePayout.account_mapping,)  # payout links need it
    export_columns_csv = (
        ("mirakl_invoice_id", plain("mirakl_invoice_id")),
        ("mirakl_shop_id", plain("mirakl_shop_id")), *MONEY_TAIL,
        ("stripe_payout_id", plain("payout_id")),
        ("mirakl_created_date", plain("mirakl_created_date")), *DATES, ("id", plain("id")),
    )  # fmt: skip
    column_list = (
        "mirakl_invoice_id", "shop", "amount", "status", "status_reason", "tries", "payout_id",
        "mirakl_created_date", "modification_datetime",
    )  # fmt: skip
    column_labels = {
        **MoneyView.column_labels,
        "mirakl_invoice_id": "Mirakl invoice",
        "payout_id": "Stripe payout",
    }
    column_formatters = {
        **MoneyView.column_formatters,
        "mirakl_invoice_id": story_link,
        "payout_id": stripe_link("account_mapping"),
    }
    column_filters = (
        FilterEqual(StripePayout.status, "Status", options=_choices(PayoutStatus)),
        "mirakl_shop_id", "currency", "creation_datetime", "mirakl_created_date",
    )  # fmt: skip
    column_searchable_list = ("mirakl_invoice_id", "payout_id")


class PaymentView(ConsoleModelView):
    history_operation = "payment"
    exact_search = True
    export_columns_csv = (
        ("mirakl_commercial_order_id", plain("mirakl_commercial_order_id")),
        ("stripe_charge_id", plain("stripe_charge_id")), ("amount", major("stripe_amount")),
        ("captured_amount", major("captured_amount")), ("currency", upper("currency")),
        ("status", plain("status")), ("status_reason", plain("status_reason")),
        ("mirakl_debit_status", plain("mirakl_debit_status")), ("attempt", plain("attempt")),
        *DATES, ("id", plain("id")),
    )  # fmt: skip
    column_list = (
        "mirakl_commercial_order_id", "stripe_charge_id", "stripe_amount", "captured_amount",
        "status", "status_reason", "mirakl_debit_status", "tries", "creation_datetime",
    )  # fmt: skip
    column_labels = {
        "mirakl_commercial_order_id": "Mirakl order",
        "stripe_charge_id": "Stripe charge",
        "stripe_amount": "Amount",
        "tries": "Tries",
    }
    column_formatters = {
        "tries": tries_formatter,
        "mirakl_commercial_order_id": story_link,
        "stripe_charge_id": stripe_link(),
        "stripe_amount": amount_formatter,
        "captured_amount": amount_formatter,
        "status": status_formatter,
    }
    column_filters = (
        FilterEqual(PaymentMapping.status, "Status", options=_choices(PaymentMappingStatus)),
        "currency", "creation_datetime",
    )  # fmt: skip
    column_searchable_list = ("mirakl_commercial_order_id", "stripe_charge_id")


class JobRunView(ConsoleModelView):
    column_list = (
        "id",
        "job",
        "trigger",
        "outcome",
        "started_at",
        "duration",
        "summary",
        "error",
        "host",
    )
    column_formatters = {"duration": duration_formatter, "counts": json_formatter}
    column_filters = (
        "job",
        FilterEqual(JobRun.outcome, "Outcome", options=_choices(JobOutcome)),
        "trigger", "started_at",
    )  # fmt: skip


class NotificationView(ConsoleModelView):
    column_list = ("id", "type", "status", "attempts", "last_error", "created_at", "sent_at")
    column_formatters = {"payload": json_formatter}
    column_filters = (
        "type",
        FilterEqual(Notification.status, "Status", options=_choices(NotificationStatus)),
        "created_at",
    )


class WebhookEventView(ConsoleModelView):
    column_list = (
        "id", "stripe_event_id", "type", "endpoint", "account", "status", "error",
        "received_at", "processed_at",
    )  # fmt: skip
    column_formatters = {"payload": json_formatter}
    column_filters = (
        "type",
        FilterEqual(WebhookEvent.status, "Status", options=_choices(WebhookEventStatus)),
        "endpoint", "received_at",
    )  # fmt: skip
    column_searchable_list = ("stripe_event_id", "account")


AUDIT_ACTIONS = (
    "retry", "abort", "ignore", "run_now", "new_link", "push_kyc_status", "login",
    "login_failed", "user_invite", "user_disable", "user_enable", "user_reset_password",
    "user_role", "rerun_from",
)  # fmt: skip


class AuditView(ConsoleModelView):
    """The audit trail: read-only for everyone, no action, newest first."""

    can_view_details = False
    column_list = (
        "created_at", "actor", "action", "target_type", "mirakl_id", "reason", "outcome",
    )  # fmt: skip
    column_labels = {"created_at": "When (UTC)", "target_type": "On", "mirakl_id": "Item"}
    column_filters = (
        FilterEqual(AuditEvent.action, "Action", options=[(a, a) for a in AUDIT_ACTIONS]),
        "actor", "target_type", "created_at",
    )  # fmt: skip
    column_searchable_list = ("mirakl_id", "actor")

    def is_action_allowed(self, name: str) -> bool:
        return False


class ReconciliationView(ConsoleModelView):
    """Findings of ``connector reconcile``: read-only, linked to our row and to Stripe."""

    column_list = (
        "id", "finding_class", "row", "mirakl_id", "stripe_id", "our_amount", "their_amount",
        "currency", "detail", "first_seen_at", "last_seen_at", "resolved_at", "action",
    )  # fmt: skip
    column_details_list = (*column_list, "stripe_account_id", "subject_at", "last_run")
    column_labels = {
        "finding_class": "Class",
        "row": "Our row",
        "mirakl_id": "Mirakl id",
        "stripe_id": "Stripe id",
        "action": "What you can do",
    }
    column_formatters = {
        "finding_class": findings.class_formatter,
        "row": findings.row_formatter,
        "stripe_id": findings.stripe_id_formatter,
        "our_amount": findings.our_amount_formatter,
        "their_amount": findings.their_amount_formatter,
        "action": findings.action_formatter,
    }
    column_filters = (
        FilterEqual(ReconciliationFinding.finding_class, "Class", options=_choices(FindingClass)),
        "resolved_at", "currency", "first_seen_at", "operation",
    )  # fmt: skip
    column_searchable_list = ("mirakl_id", "stripe_id")
    details_template = "admin/model/details.html"


def init_app(app: Flask) -> Admin:
    """Build the console (its ``Admin`` and views) for this app."""
    app.context_processor(lambda: {"console_environment": environment})
    admin = Admin(
        app,
        name="Stripe Connector",
        url="/console",
        index_view=DashboardView(name="Dashboard", url="/console"),
        theme=Bootstrap4Theme(base_template="admin/console_base.html", fluid=True),
        csp_nonce_generator=csp_nonce,  # Flask-Admin's inline scripts carry the page's nonce
    )
    session = db  # Flask-Admin 2 takes the Flask-SQLAlchemy object
    admin.add_view(ShopView(AccountMapping, session, name="Shops", endpoint="shops"))
    admin.add_view(TransferView(StripeTransfer, session, name="Transfers", endpoint="transfers"))
    admin.add_view(RefundView(StripeRefund, session, name="Refunds", endpoint="refunds"))
    admin.add_view(PayoutView(StripePayout, session, name="Payouts", endpoint="payouts"))
    admin.add_view(PaymentView(PaymentMapping, session, name="Payments", endpoint="payments"))
    admin.add_view(
        ReconciliationView(
            ReconciliationFinding, session, name="Reconciliation", endpoint="reconciliation"
        )
    )
    admin.add_view(JobsView(name="Jobs", endpoint="jobs", category="Jobs"))
    admin.add_view(
        JobRunView(JobRun, session, name="Job runs", endpoint="job_runs", category="Jobs")
    )
    admin.add_view(
        NotificationView(
            Notification, session, name="Notifications", endpoint="notifications", category="Logs"
        )
    )
    admin.add_view(
        WebhookEventView(
            WebhookEvent, session, name="Webhook events", endpoint="webhook_events", category="Logs"
        )
    )
    admin.add_view(AuditView(AuditEvent, session, name="Audit", endpoint="audit", category="Logs"))
    admin.add_view(access.UsersView(name="Users", endpoint="users", category="Admin"))
    admin.add_view(
        access.CheckpointsView(name="Rerun from a date", endpoint="checkpoints", category="Jobs")
    )
    admin.add_view(timeline.TimelineView(name="Timeline", endpoint="timeline"))
    admin.add_view(timeline.ShopPageView(name="Shop", endpoint="shop"))
    access.init_app(app)
    return admin
