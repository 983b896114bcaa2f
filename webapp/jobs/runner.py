"""Runs a job: app context, the job's lease, the audit row, one summary line per stage.

Whoever starts a job (CLI, scheduler, console) goes through ``run_job``. The lease is a
database lock with a 45-second expiry renewed by a heartbeat thread, so a run killed with
SIGKILL frees its job within a minute, and the CLI needs no Redis.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import update

from webapp.clock import utcnow
from webapp.errors import ConnectorError
from webapp.extensions import db
from webapp.logs import job_logging
from webapp.models import JobOutcome, JobRun
from webapp.services.dispatch.money_jobs import dispatch
from webapp.services.ledger import leases
from webapp.services.notify import alerts
from webapp.services.notify.outbox import flush_outbox

log = logging.getLogger(__name__)

ABANDONED = "abandoned: the run stopped without finishing (process killed?); its lease expired"

# A run holds its job for JOB_LEASE_TTL seconds (default 45) without a heartbeat; the
# heartbeat renews it three times per TTL, so only a dead run ever loses it.


@dataclass
class JobContext:
    """What a running job may use: report lines and dispatch money operations."""

    job: str
    run_id: int
    trigger: str
    inline: bool
    lines: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def report(self, stage: str, counts: Mapping[str, int] | None = None, note: str = "") -> None:
        """Record one summary line for a stage, e.g. ``product orders: 14 fetched, 12 PENDING``."""
        parts = [f"{value} {key}" for key, value in (counts or {}).items()]
        if note:
            parts.append(note)
        line = f"{stage}: {', '.join(parts) if parts else 'nothing to do'}"
        self.lines.append(line)
        if counts:
            self.counts[stage] = dict(counts)
        log.info("%s run %s: %s", self.job, self.run_id, line)

    def dispatch(self, operation: str, ids: Sequence[int]) -> int:
        """Run (inline) or enqueue (RQ) one money job per row id; return how many."""
        return dispatch(operation, ids, inline=self.inline)


class Heartbeat:
    """Renews a lease from a background thread until stopped."""

    def __init__(self, app: Flask, name: str, holder: str) -> None:
        self.app, self.name, self.holder = app, name, holder
        self.stopped = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)

    def _beat(self) -> None:
        ttl = self.app.config["JOB_LEASE_TTL"]
        while not self.stopped.wait(ttl / 3):
            with self.app.app_context():
                if not leases.renew(self.name, self.holder, ttl):
                    self.lost = True
                    log.error("lease %s: lost by %s", self.name, self.holder)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def run_job(
    name: str,
    func: Callable[..., None],
    *,
    trigger: str = "cli",
    inline: bool = True,
    params: Mapping[str, Any] | None = None,
) -> tuple[JobRun, JobContext]:
    """Run ``func(ctx, **params)`` under the job's lease and record the run; never raises."""
    run = JobRun(job=name, trigger=trigger, host=f"{socket.gethostname()}:{os.getpid()}")
    db.session.add(run)
    db.session.commit()
    ctx = JobContext(job=name, run_id=run.id, trigger=trigger, inline=inline)
    lease_name, holder = f"job:{name}", f"run:{run.id}"
    if not leases.acquire(lease_name, holder, current_app.config["JOB_LEASE_TTL"]):
        held = leases.find(lease_name)
        since = f"{held.acquired_at:%Y-%m-%d %H:%M:%S} UTC ({held.holder})" if held else "just now"
        ctx.lines.append(f"skipped: {name} is already running since {since}")
        _finish(run, ctx, JobOutcome.SKIPPED)
        return run, ctx
    _close_abandoned_runs(name, run.id)
    try:
        with (
            job_logging(name, run.id),
            Heartbeat(current_app._get_current_object(), lease_name, holder),
        ):
            func(ctx, **(params or {}))
        _finish(run, ctx, JobOutcome.SUCCEEDED)
    except ConnectorError as exc:
        db.session.rollback()
        log.error("%s run %s: failed: %s", name, run.id, exc)
        _finish(run, ctx, JobOutcome.FAILED, str(exc))
    except Exception as exc:  # noqa: BLE001 - the run boundary: record, never crash the caller
        db.session.rollback()
        log.exception("%s run %s: unexpected error", name, run.id)
        _finish(run, ctx, JobOutcome.FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
    finally:
        leases.release(lease_name, holder)
    run = db.session.merge(run)
    if run.outcome == JobOutcome.FAILED:
        _send_critical_error(run)
    _flush_notifications(ctx)
    return run, ctx


def _send_critical_error(run: JobRun) -> None:
    """The reference's critical-error e-mail for a failed run; never breaks the run."""
    try:
        alerts.send_critical_error_alert(run.job, run.id, run.host, run.error or "unknown error")
    except Exception:  # noqa: BLE001 - the alert is best effort; the run is recorded
        db.session.rollback()
        log.exception("%s run %s: critical-error e-mail not sent", run.job, run.id)


def _close_abandoned_runs(name: str, run_id: int) -> None:
    """Earlier runs of ``name`` still marked running died (we got their lease): say so."""
    db.session.execute(
        update(JobRun)
        .where(JobRun.job == name, JobRun.outcome == JobOutcome.RUNNING, JobRun.id < run_id)
        .values(outcome=JobOutcome.FAILED, finished_at=utcnow(), error=ABANDONED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _flush_notifications(ctx: JobContext) -> None:
    """Send what the run put in the notification outbox; never breaks the run."""
    try:
        flush_outbox(inline=ctx.inline)
    except Exception:  # noqa: BLE001 - rows stay PENDING for the next flush
        db.session.rollback()
        log.exception("%s run %s: notifications not flushed", ctx.job, ctx.run_id)


def _finish(run: JobRun, ctx: JobContext, outcome: JobOutcome, error: str | None = None) -> None:
    run = db.session.merge(run)
    run.outcome = outcome
    run.finished_at = utcnow()
    run.summary = "\n".join(ctx.lines) or None
    run.counts = json.dumps(ctx.counts) if ctx.counts else None
    run.error = error[:1000] if error else None
    db.session.commit()
