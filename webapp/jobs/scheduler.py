"""Scheduling: registers every job with rq-scheduler and enqueues job runs, once each.

rq-scheduler re-pushes the same job at each cron tick, even when the previous one has not
run yet; so what it schedules is a cheap tick, ``enqueue_run``, which enqueues the real run
under a fixed RQ job id with ``unique=True``: a run already queued or running is never
queued again. The job's database lease is the last guard, shared with CLI runs.
"""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from rq.exceptions import DuplicateJobError
from rq_scheduler import Scheduler

from webapp.jobs.runner import run_job
from webapp.jobs.table import get_job, job_modules
from webapp.services.queueing.app_context import with_app_context
from webapp.services.queueing.queues import JOBS_QUEUE, get_queue, get_redis

log = logging.getLogger(__name__)

SCHEDULE_ID_PREFIX = "connector-schedule-"
RUN_ID_PREFIX = "connector-run-"
RUN_TIMEOUT = 3600  # seconds a job run may take in a worker
SCHEDULER_INTERVAL = 10  # seconds between rq-scheduler checks


def schedules() -> dict[str, str]:
    """Job name → cron expression (UTC): the defaults, overridden by ``SCHEDULE_<JOB>``."""
    overrides = current_app.config["SCHEDULE_OVERRIDES"]
    return {
        module.NAME: overrides.get(module.NAME, module.SCHEDULE)
        for module in job_modules()
        if overrides.get(module.NAME, module.SCHEDULE)
    }


def register_schedules(scheduler: Scheduler) -> dict[str, str]:
    """Replace the connector's schedules in Redis with the current ones; return them."""
    for job in scheduler.get_jobs():
        if job.id.startswith(SCHEDULE_ID_PREFIX):
            scheduler.cancel(job)
            job.delete()
    registered = schedules()
    for name, cron in registered.items():
        scheduler.cron(
            cron,
            func=enqueue_run,
            args=[name, "scheduler"],
            id=f"{SCHEDULE_ID_PREFIX}{name}",
            queue_name=JOBS_QUEUE,
            use_local_timezone=False,
        )
    return registered


@with_app_context
def enqueue_run(name: str, trigger: str = "scheduler") -> bool:
    """Queue one run of ``name`` unless one is already queued or running."""
    get_job(name)  # unknown names fail here, not in the worker
    try:
        get_queue(JOBS_QUEUE).enqueue_call(
            run_in_worker,
            args=(name, trigger),
            job_id=f"{RUN_ID_PREFIX}{name}",
            unique=True,
            result_ttl=0,
            failure_ttl=300,
            timeout=RUN_TIMEOUT,
        )
    except DuplicateJobError:
        log.info("%s: a run is already queued or running; not queued again", name)
        return False
    return True


@with_app_context
def run_in_worker(name: str, trigger: str) -> str:
    """A job run inside an RQ worker: money operations go to the money queue."""
    module = get_job(name)
    run, _ = run_job(name, module.run, trigger=trigger, inline=False)
    return run.outcome


@click.command("scheduler")
@click.option("--burst", is_flag=True, help="Register, enqueue what is due, and exit.")
@with_appcontext
def scheduler_command(burst: bool) -> None:
    """Register the job schedules and run rq-scheduler (the Procfile's scheduler process)."""
    scheduler = Scheduler(
        queue_name=JOBS_QUEUE, connection=get_redis(), interval=SCHEDULER_INTERVAL
    )
    for name, cron in register_schedules(scheduler).items():
        click.echo(f"scheduled {name}: {cron} (UTC)")
    scheduler.run(burst=burst)
