"""Console pages beyond the model lists: the dashboard (console home) and the jobs page.

The dashboard answers "is everyone onboarded, did every seller get paid, what failed" with
grouped counts on indexed status columns; the jobs page queues a run in RQ ("run now") and
never runs a job inside the request.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_login import current_user
from redis import RedisError
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import case, func, select

from webapp.extensions import db
from webapp.jobs.scheduler import enqueue_run, schedules
from webapp.jobs.table import get_job, job_modules
from webapp.models import (
    AccountMapping,
    JobRun,
    PaymentMapping,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
)
from webapp.services.ledger.minor_units import format_amount
from webapp.services.queueing.queues import ALL_QUEUES, get_queue
from webapp.views.auth import SecuredMixin
from webapp.views.console_columns import format_duration

log = logging.getLogger(__name__)

MONEY_MODELS = {"transfers": StripeTransfer, "refunds": StripeRefund, "payouts": StripePayout}


def status_counts(model: type) -> dict[str, int]:
    rows = db.session.execute(select(model.status, func.count()).group_by(model.status))
    return dict(sorted(rows.all()))


def shop_counts() -> dict[str, int]:
    m = AccountMapping
    state = case(
        (m.ignored.is_(True), "ignored"),
        (m.payout_enabled.is_(True) & m.payin_enabled.is_(True), "onboarded"),
        (m.disabled_reason.is_not(None), "disabled"),
        else_="pending",
    )
    found = dict(db.session.execute(select(state, func.count()).group_by(state)).all())
    return {key: found.get(key, 0) for key in ("onboarded", "pending", "disabled", "ignored")}


def money_at_risk(model: type, statuses: Any) -> list[dict[str, Any]]:
    """Per currency: count and amount of PENDING, ON_HOLD and FAILED rows."""
    watched = [statuses.PENDING.value, statuses.ON_HOLD.value, statuses.FAILED.value]
    rows = db.session.execute(
        select(model.currency, model.status, func.count(), func.sum(model.amount))
        .where(model.status.in_(watched))
        .group_by(model.currency, model.status)
    ).all()
    table: dict[str, dict[str, Any]] = {}
    for currency, status, count, total in rows:
        line = table.setdefault(currency or "", {"currency": (currency or "?").upper()})
        short = status.rsplit("_", 1)[-1].lower() if not status.endswith("ON_HOLD") else "on_hold"
        line[short] = f"{format_amount(int(total or 0), currency)} ({count})"
    return [table[key] for key in sorted(table)]


def last_runs() -> list[dict[str, Any]]:
    """Each job with its schedule and its latest run (None if it never ran)."""
    crons = schedules()
    jobs = []
    for module in job_modules():
        run = (
            db.session.execute(
                select(JobRun).where(JobRun.job == module.NAME).order_by(JobRun.started_at.desc())
            )
            .scalars()
            .first()
        )
        doc = (module.__doc__ or "").strip().splitlines()
        jobs.append(
            {
                "name": module.NAME,
                "schedule": crons.get(module.NAME, "not scheduled"),
                "description": doc[0] if doc else "",
                "run": run,
                "duration": format_duration(run.started_at, run.finished_at) if run else "",
            }
        )
    return jobs


def queue_stats() -> list[dict[str, Any]] | None:
    """RQ queues: waiting, running and failed jobs (None when Redis does not answer)."""
    try:
        stats = []
        for name in ALL_QUEUES:
            queue = get_queue(name)
            stats.append(
                {
                    "name": name,
                    "queued": queue.count,
                    "running": StartedJobRegistry(queue=queue).count,
                    "failed": FailedJobRegistry(queue=queue).count,
                }
            )
        return stats
    except RedisError:
        return None


class DashboardView(SecuredMixin, AdminIndexView):
    @expose("/")
    def index(self) -> str:
        return self.render(
            "admin/dashboard.html",
            counts={name: status_counts(model) for name, model in MONEY_MODELS.items()},
            payments=status_counts(PaymentMapping),
            shops=shop_counts(),
            at_risk={
                "transfers": money_at_risk(StripeTransfer, TransferStatus),
                "refunds": money_at_risk(StripeRefund, RefundStatus),
                "payouts": money_at_risk(StripePayout, PayoutStatus),
            },
            jobs=last_runs(),
        )


class JobsView(SecuredMixin, BaseView):
    """Every job with its schedule and last run, a "run now" button, and the RQ queues."""

    @expose("/")
    def index(self) -> str:
        return self.render("admin/jobs.html", jobs=last_runs(), queues=queue_stats())

    @expose("/run", methods=["POST"])
    def run(self) -> Any:
        name = request.form.get("job", "")
        try:
            get_job(name)
        except KeyError:
            flash(f"There is no job named {name!r}.", "error")
            return redirect(url_for(".index"))
        try:
            queued = enqueue_run(name, "console")
        except RedisError:
            log.exception("job %s: could not be queued from the console", name)
            flash(f"{name} was not queued: Redis is not answering. Try again later.", "error")
            return redirect(url_for(".index"))
        log.info("job %s: run requested by %s (queued: %s)", name, current_user.email, queued)
        if queued:
            flash(f"{name} queued: a worker will run it shortly.", "success")
        else:
            flash(f"{name} is already queued or running.", "warning")
        return redirect(url_for(".index"))
