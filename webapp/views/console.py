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
from flask_admin import Admin
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from sqlalchemy import select

from webapp.errors import ConnectorError
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    JobOutcome,
    JobRun,
    Notification,
    NotificationStatus,
    OperationEvent,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutStatus,
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
from webapp.services.dispatch import retries
from webapp.services.onboarding import kyc_push
from webapp.services.onboarding import links as onboarding_links
from webapp.views.auth import SecuredMixin
from webapp.views.console_columns import (
    amount_formatter,
    duration_formatter,
    environment,
    json_formatter,
    onboarding_formatter,
    shop_formatter,
    status_formatter,
    stripe_link,
    url_formatter,
)
from webapp.views.dashboard import DashboardView, JobsView

log = logging.getLogger(__name__)

PAGE_SIZE = 50  # rows per list page
HISTORY_LIMIT = 200  # events shown on a detail page


def _choices(enum: Any) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


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
    history_operation: str | None = None  # OperationEvent.operation shown on the detail page

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
    return [int(i) for i in raw if str(i).isdigit()]


def _flash_unchanged(unchanged: dict[int, str], limit: int = 5) -> None:
    for row_id, why in list(unchanged.items())[:limit]:
        flash(f"#{row_id}: {why}", "warning")
    if len(unchanged) > limit:
        flash(f"… and {len(unchanged) - limit} more rows unchanged", "warning")


class MoneyView(ConsoleModelView):
    """Transfers, refunds, payouts: retry (single and bulk), abort or ignore with a reason."""

    kind = "transfer"  # retries.KINDS key
    list_template = "admin/money/list.html"
    column_formatters = {
        "amount": amount_formatter,
        "status": status_formatter,
        "shop": shop_formatter,
    }

    def is_retryable(self, row: Any) -> bool:
        return retries.refusal(retries.get_kind(self.kind), row, row.id) is None

    def is_action_allowed(self, name: str) -> bool:
        return name != "ignore" or self.kind == "transfer"

    def _actor(self) -> str:
        return current_user.email

    @action("retry", "Retry", "Retry the selected rows? CREATED rows are never retried.")
    def action_retry(self, ids: list[str]) -> None:
        outcome = retries.retry(self.kind, _ids(ids), actor=self._actor())
        if outcome.queued:
            flash(f"{outcome.queued} {self.kind}(s) queued for retry.", "success")
        if outcome.not_queued:
            flash(
                f"{len(outcome.not_queued)} {self.kind}(s) are PENDING but could not be queued "
                "(Redis unavailable): the next run of the job will send them.",
                "error",
            )
        if not outcome.queued and not outcome.not_queued:
            flash(f"No {self.kind} was queued.", "warning")
        _flash_unchanged(outcome.unchanged)

    def _decide(self, ids: list[str], decide: Callable[..., Any], done: str) -> None:
        try:
            outcome = decide(
                self.kind, _ids(ids), request.form.get("reason", ""), actor=self._actor()
            )
        except ValueError as exc:
            flash(f"Nothing changed: {exc}.", "error")
            return
        if outcome.changed:
            flash(f"{len(outcome.changed)} {self.kind}(s) {done}.", "success")
        _flash_unchanged(outcome.unchanged)

    @action("abort", "Abort (give a reason)", "Abort the selected rows? They will never be paid.")
    def action_abort(self, ids: list[str]) -> None:
        self._decide(ids, retries.abort_rows, "aborted")

    @action("ignore", "Ignore (give a reason)", "Ignore the selected transfers for good?")
    def action_ignore(self, ids: list[str]) -> None:
        self._decide(ids, retries.ignore_rows, "ignored")


class ShopActionsView(ConsoleModelView):
    """Shops: refresh the onboarding link, push the KYC status to Mirakl."""

    def _call(self, ids: list[str], func: Callable[[int], Any], done: str) -> None:
        ok = 0
        for mapping_id in _ids(ids):
            try:
                func(mapping_id)
                ok += 1
            except ConnectorError as exc:
                db.session.rollback()
                flash(f"Shop mapping #{mapping_id}: {exc}", "error")
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
    column_list = (
        "id", "type", "mirakl_id", "shop", "amount", "status", "status_reason", "attempt",
        "transfer_id", "transaction_id", "mirakl_created_date", "modification_datetime",
    )  # fmt: skip
    column_labels = {
        "mirakl_id": "Mirakl id",
        "transfer_id": "Stripe transfer",
        "transaction_id": "Charge / transfer",
    }
    column_formatters = {
        **MoneyView.column_formatters,
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
    column_list = (
        "id", "type", "mirakl_refund_id", "mirakl_order_id", "shop", "amount", "status",
        "status_reason", "attempt", "stripe_refund_id", "transaction_id", "modification_datetime",
    )  # fmt: skip
    column_labels = {"stripe_refund_id": "Stripe refund", "transaction_id": "Charge"}
    column_formatters = {
        **MoneyView.column_formatters,
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
    column_list = (
        "id", "mirakl_invoice_id", "shop", "amount", "status", "status_reason", "attempt",
        "payout_id", "mirakl_created_date", "modification_datetime",
    )  # fmt: skip
    column_labels = {"payout_id": "Stripe payout"}
    column_formatters = {**MoneyView.column_formatters, "payout_id": stripe_link("account_mapping")}
    column_filters = (
        FilterEqual(StripePayout.status, "Status", options=_choices(PayoutStatus)),
        "mirakl_shop_id", "currency", "creation_datetime", "mirakl_created_date",
    )  # fmt: skip
    column_searchable_list = ("payout_id",)


class PaymentView(ConsoleModelView):
    history_operation = "payment"
    column_list = (
        "id", "mirakl_commercial_order_id", "stripe_charge_id", "stripe_amount",
        "captured_amount", "status", "status_reason", "mirakl_debit_status", "attempt",
        "creation_datetime",
    )  # fmt: skip
    column_labels = {"stripe_charge_id": "Stripe charge", "stripe_amount": "Amount"}
    column_formatters = {
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


def init_app(app: Flask) -> Admin:
    """Build the console (its ``Admin`` and views) for this app."""
    app.context_processor(lambda: {"console_environment": environment})
    admin = Admin(
        app,
        name="Stripe Connector",
        url="/console",
        index_view=DashboardView(name="Dashboard", url="/console"),
        theme=Bootstrap4Theme(base_template="admin/console_base.html", fluid=True),
    )
    session = db  # Flask-Admin 2 takes the Flask-SQLAlchemy object
    admin.add_view(ShopView(AccountMapping, session, name="Shops", endpoint="shops"))
    admin.add_view(TransferView(StripeTransfer, session, name="Transfers", endpoint="transfers"))
    admin.add_view(RefundView(StripeRefund, session, name="Refunds", endpoint="refunds"))
    admin.add_view(PayoutView(StripePayout, session, name="Payouts", endpoint="payouts"))
    admin.add_view(PaymentView(PaymentMapping, session, name="Payments", endpoint="payments"))
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
    return admin
