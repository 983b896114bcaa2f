"""``flask --app wsgi connector worker``: an RQ worker with one app for the process.

Jobs run in the worker process itself (no fork per job), each inside a fresh app context,
so the app and its connection pools are built once and every job gets its own session.
A worker killed mid-job loses only that job; the next run of its workflow finds the row
again (PENDING rows are swept and money jobs look in Stripe before sending again).

On SIGTERM (a deploy, a restart) the worker finishes the job in hand and exits 0, as RQ
does; but platforms SIGKILL 30 s after SIGTERM, so a job still running ``SHUTDOWN_GRACE``
seconds later is abandoned (``ShutdownTimeout`` raised inside it) and the worker still
exits 0: the job's row stays PENDING with its claim, which the next run looks up in Stripe.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from rq import SimpleWorker

from webapp.extensions import db
from webapp.services.queueing.queues import ALL_QUEUES, get_queue, get_redis

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 20  # seconds a job may go on after SIGTERM; platforms SIGKILL at 30


class ShutdownTimeout(BaseException):
    """Raised inside a job still running ``SHUTDOWN_GRACE`` seconds after SIGTERM.

    A BaseException, so that no per-item ``except Exception`` of the job swallows it and
    goes on with the next item.
    """


class ConnectorWorker(SimpleWorker):
    """A SimpleWorker that runs each job in a fresh app context of ``app``."""

    app: Flask
    is_shutdown_timer_set = False

    def perform_job(self, job: Any, queue: Any, *args: Any) -> bool:
        # RQ 3 passes an ``execution`` after the queue; RQ 2 does not.
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, *args)
            finally:
                if self.is_shutdown_timer_set:
                    signal.alarm(0)  # the job is over: nothing left to abandon
                db.session.remove()

    def request_stop(self, signum: int, frame: Any) -> None:
        """SIGTERM: RQ stops at once when idle (raising) or after the job in hand; bound
        that wait to ``SHUTDOWN_GRACE``."""
        super().request_stop(signum, frame)
        signal.signal(signal.SIGALRM, self._abandon_job)
        signal.alarm(SHUTDOWN_GRACE)
        self.is_shutdown_timer_set = True

    def _abandon_job(self, signum: int, frame: Any) -> None:
        log.warning(
            "worker %s: job still running %s s after SIGTERM: abandoned", self.name, SHUTDOWN_GRACE
        )
        raise ShutdownTimeout(f"abandoned {SHUTDOWN_GRACE} s after SIGTERM")


def make_worker(queues: tuple[str, ...] = ALL_QUEUES) -> ConnectorWorker:
    worker = ConnectorWorker([get_queue(name) for name in queues], connection=get_redis())
    worker.app = current_app._get_current_object()
    return worker


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Drain the queues, then exit.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool) -> None:
    """Process the connector's RQ queues (jobs, money, notifications by default)."""
    make_worker(queues or ALL_QUEUES).work(burst=burst, with_scheduler=False)
