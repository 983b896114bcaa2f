"""``flask --app wsgi connector worker``: an RQ worker with one app for the process.

Jobs run in the worker process itself (no fork per job), each inside a fresh app context,
so the app and its connection pools are built once and every job gets its own session.
A worker killed mid-job loses only that job; the next run of its workflow finds the row
again (PENDING rows are swept and money jobs look in Stripe before sending again).
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from rq import SimpleWorker

from webapp.extensions import db
from webapp.services.queueing.queues import ALL_QUEUES, get_queue, get_redis


class ConnectorWorker(SimpleWorker):
    """A SimpleWorker that runs each job in a fresh app context of ``app``."""

    app: Flask

    def perform_job(self, job: Any, queue: Any, *args: Any) -> bool:
        # RQ 3 passes an ``execution`` after the queue; RQ 2 does not.
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, *args)
            finally:
                db.session.remove()


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
