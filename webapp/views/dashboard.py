"""Console pages beyond the model lists: the dashboard (console home) and the jobs page.

The dashboard answers "is everyone onboarded, did every seller get paid, what failed" with
grouped counts on indexed status columns; the jobs page queues a run in RQ ("run now") and
never runs a job inside the request.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_login import current_user
from redis import RedisError
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import case, func, select

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.jobs.scheduler import enqueue_run, schedules
from webapp.jobs.table import get_job, job_modules
from webapp.models import (
    AccountMapping,
    JobRun,
    OperationEvent,
    PaymentMapping,
    PayoutStatus,
    RefundStatus,
    StripePayout,
    StripeRefund,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.access import audit
from webapp.services.ledger.minor_units import format_amount
from webapp.services.queueing.queues import ALL_QUEUES, get_queue
from webapp.services.setup.checks import run_and_record
from webapp.services.setup.results import Level, find_last_result
from webapp.views.auth import SecuredMixin
from webapp.views.console_charts import bar_chart, day_range
from webapp.views.console_columns import format_duration
from webapp.views.console_rules import DISABLING_REASONS

log = logging.getLogger(__name__)

MONEY_MODELS = {"transfers": StripeTransfer, "refunds": StripeRefund, "payouts": StripePayout}


def status_counts(model: type) -> dict[str, int]:
    rows = db.session.execute(select(model.status, func.count()).group_by(model.status))
    return dict(sorted(rows.all()))


def shop_counts() -> dict[str, int]:
    """Shops per state, with the same checks in the same order as ``shop_state``."""
    m = AccountMapping
    prefix, *exact = DISABLING_REASONS
    state = case(
        (m.ignored.is_(True), "ignored"),
        (m.payout_enabled.is_(True) & m.payin_enabled.is_(True), "onboarded"),
        (m.disabled_reason.startswith(prefix) | m.disabled_reason.in_(exact), "disabled"),
        else_="pending",
    )
    found = dict(db.session.execute(select(state, func.count()).group_by(state)).all())
    return {key: found.get(key, 0) for key in ("onboarded", "pending", "disabled", "ignored")}


def money_at_risk(model: type, statuses: Any) -> list[dict[str, Any]]:
    """Per currency: count and amount of PENDING, ON_HOLD and FAILED rows."""
    watched = [statuses.PENDING, statuses.ON_HOLD, statuses.FAILED]
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
        days = request.args.get("days", type=int)
        days = days if days in CHART_DAYS else CHART_DAYS[0]
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
            chart_days=days,
            chart_windows=CHART_DAYS,
            charts=charts(days),
            setup=find_last_result(),
            can_check_setup=can_check_setup(),
        )

    @expose("/setup/check", methods=["POST"])
    def check_setup(self) -> Any:
        """The "Run checks now" button: doctor runs in the request (its probes time out fast)."""
        if not can_check_setup():
            abort(403, "Only an admin can run the setup checks.")
        results, stored = run_and_record("console")
        log.info("setup check: run from the console by %s", current_user.email)
        failed = sum(result.level is Level.FAIL for result in results)
        if not stored:
            flash("The checks ran but their result could not be stored: see the database.", "error")
        elif failed:
            flash(f"Setup checks: {failed} failed; see the setup panel.", "error")
        else:
            flash("Setup checks: nothing failed.", "success")
        return redirect(url_for(".index"))


def can_check_setup() -> bool:
    """Admins run the setup checks; a user without a role (before roles exist) counts as one."""
    return getattr(current_user, "role", "admin") == "admin"


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
            audit.record_now("run_now", actor=current_user.email, target_type="job",
                             target_id=name, outcome="not queued: Redis unavailable")  # fmt: skip
            flash(f"{name} was not queued: Redis is not answering. Try again later.", "error")
            return redirect(url_for(".index"))
        log.info("job %s: run requested by %s (queued: %s)", name, current_user.email, queued)
        audit.record_now("run_now", actor=current_user.email, target_type="job", target_id=name,
                         outcome="queued" if queued else "already queued or running")  # fmt: skip
        if queued:
            flash(f"{name} queued: a worker will run it shortly.", "success")
        else:
            flash(f"{name} is already queued or running.", "warning")
        return redirect(url_for(".index"))


CHART_DAYS = (7, 30)  # windows the dashboard offers
CREATED_MONEY = {
    "transferred": (StripeTransfer, "transfer", TransferStatus.CREATED),
    "refunded": (StripeRefund, "refund", RefundStatus.CREATED),
    "paid out": (StripePayout, "payout", PayoutStatus.CREATED),
}


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def money_per_day(since: datetime) -> dict[str, dict[str, dict[date, int]]]:
    """metric → currency → day → amount that reached CREATED that day (from the history)."""
    e = OperationEvent
    found: dict[str, dict[str, dict[date, int]]] = {}
    for metric, (model, operation, created) in CREATED_MONEY.items():
        day = func.date(e.created_at)
        query = (
            select(day, model.currency, func.sum(model.amount))
            .join(model, model.id == e.operation_id)
            .where(e.operation == operation, e.to_status == created, e.created_at >= since)
            .group_by(day, model.currency)
        )
        if model is StripeTransfer:  # reversals move money back: not "transferred"
            query = query.where(model.type != TransferType.REFUND)
        for when, currency, amount in db.session.execute(query).all():
            per_day = found.setdefault(metric, {}).setdefault((currency or "").lower(), {})
            per_day[_day(when)] = int(amount or 0)
    return found


def failures_per_day(since: datetime) -> dict[date, int]:
    """Money rows that moved to a FAILED status, per day."""
    e = OperationEvent
    day = func.date(e.created_at)
    rows = db.session.execute(
        select(day, func.count())
        .where(e.to_status.like("%FAILED"), e.created_at >= since)
        .group_by(day)
    ).all()
    return {_day(when): count for when, count in rows}


CHART_CACHE_SECONDS = 60  # charts are sums over up to a month: recomputed at most once a minute


def charts(days: int) -> list[dict[str, Any]]:
    """The dashboard's charts, cached per process for ``CHART_CACHE_SECONDS``: each render
    sums a month of history, which costs more than the rest of the dashboard together."""
    cache = current_app.extensions.setdefault("console_charts", {})  # one per app
    now = time.monotonic()
    cached = cache.get(days)
    if cached and now - cached[0] < CHART_CACHE_SECONDS:
        return cached[1]
    drawn = draw_charts(days)
    cache[days] = (now, drawn)
    return drawn


def draw_charts(days: int) -> list[dict[str, Any]]:
    """The dashboard's charts for the last ``days`` days: one per metric and currency."""
    today = utcnow().date()
    window = day_range(today, days)
    since = datetime.combine(window[0], datetime.min.time())
    drawn = []
    for metric, currencies in money_per_day(since).items():
        for currency, values in sorted(currencies.items()):
            title = f"Money {metric} per day ({currency.upper()})"
            drawn.append({"title": title, "svg": bar_chart(
                title, window, values, lambda v, c=currency: format_amount(v, c))})  # fmt: skip
    failures = failures_per_day(since)
    drawn.append({"title": "Failures per day", "svg": bar_chart(
        "Failures per day", window, failures, str, color="#dc3545")})  # fmt: skip
    return drawn
