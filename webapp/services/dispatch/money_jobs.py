"""Money jobs: one per row, run inline (CLI) or as RQ jobs (scheduler, console).

A money job takes a row id, never an ORM object. The executors themselves live in the
workflow packages; ``EXECUTORS`` maps an operation name to its ``execute(row_id) -> None``.
Executors record their own outcome and do not raise for item-level failures; anything they
raise leaves the row PENDING for the next run's sweep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from flask import current_app
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from webapp.extensions import db
from webapp.models import PaymentMapping, StripePayout, StripeRefund, StripeTransfer
from webapp.services.ledger import attempts
from webapp.services.ledger.transfer_job import execute_transfer
from webapp.services.payouts.money_job import execute_payout, released_by
from webapp.services.queueing.app_context import with_app_context
from webapp.services.queueing.queues import MONEY_QUEUE, get_queue
from webapp.services.refunds.money_job import execute_refund
from webapp.services.validation.money_job import execute_capture

log = logging.getLogger(__name__)

# Operation name → ``execute(row_id) -> None`` of its workflow.
EXECUTORS: dict[str, Callable[[int], None]] = {
    "transfer": execute_transfer,
    "refund": execute_refund,
    "payout": execute_payout,
    "capture": execute_capture,
}
# Queued mode: rows that wait for another row (an invoice's fees for its credits, its payout
# for its transfers) are queued by that row's job once it is done: operation → function giving
# (operation, row ids) to queue.
FOLLOW_UPS: dict[str, Callable[[int], list[tuple[str, list[int]]]]] = {"transfer": released_by}
MODELS: dict[str, type] = {
    "transfer": StripeTransfer,
    "refund": StripeRefund,
    "payout": StripePayout,
    "capture": PaymentMapping,
}
FAILED_JOB_TTL = 300  # seconds an RQ failure record is kept


def job_id(operation: str, row_id: int) -> str:
    """RQ job id of a row's money job: the same row is never queued twice at once."""
    return f"money-{operation}-{row_id}"  # RQ 3 allows letters, digits, _ and - only


def execute(operation: str, row_id: int) -> None:
    """Run one row's money job in the current app context (RQ worker or inline thread).

    The job's session keeps what it loaded across commits: a money job works on the one row
    it claimed, read back inside the claim's transaction, and every later write goes through
    ``transitions``, which updates the object as it writes; reloading the row after each
    commit would only repeat reads.
    """
    session = db.session()
    expiring, session.expire_on_commit = session.expire_on_commit, False
    try:
        EXECUTORS[operation](row_id)
    finally:
        session.expire_on_commit = expiring


@with_app_context
def run_money_job(operation: str, row_id: int) -> None:
    """Entry point of a money job in an RQ worker; then queues what waited for this row."""
    execute(operation, row_id)
    if operation in FOLLOW_UPS:
        for follower, ids in FOLLOW_UPS[operation](row_id):
            dispatch(follower, ids, inline=False)


def dispatch(operation: str, ids: Sequence[int], *, inline: bool) -> int:
    """Run the rows' money jobs now (bounded concurrency) or enqueue them; return the count.

    Enqueued rows are marked queued (the console's "queued" badge) once they are in the
    queue, here and nowhere else, so a row is never marked when Redis refused it.
    """
    if not ids:
        return 0
    # The jobs read their rows in sessions of their own (a worker's, or a thread's): what
    # they read must be committed, and the caller's copies, which they are about to change,
    # expire with the commit so that the caller reads the jobs' outcome, not its old copy.
    db.session.commit()
    if inline:
        return _run_inline(operation, ids)
    queue = get_queue(MONEY_QUEUE)
    waiting = _Waiting(queue)
    queued = 0
    for row_id in ids:
        if _enqueue(queue, operation, row_id, waiting):
            queued += 1
        else:
            log.info("%s %s: already queued", operation, row_id)
    attempts.mark_queued(MODELS[operation], ids)
    return queued


class _Waiting:
    """Ids of the jobs really in the queue, read once, on the first duplicate."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.ids: set[str] | None = None

    def __contains__(self, job: Job) -> bool:
        status = job.get_status(refresh=False)
        if status in (JobStatus.DEFERRED, JobStatus.SCHEDULED):
            return True
        if status != JobStatus.QUEUED:
            return False
        if self.ids is None:
            self.ids = set(self.queue.get_job_ids())
        return job.id in self.ids


def _enqueue(queue: Queue, operation: str, row_id: int, waiting: _Waiting) -> bool:
    """Enqueue the row's money job; False when it is already waiting in the queue.

    The ids given have no live claim (new, retried, or found lost by the sweep), so a job
    of the same id that is not waiting is a leftover of a dead worker: killed mid-job it
    stays STARTED (RQ notices only after minutes), killed just after taking it from the
    queue it stays QUEUED outside the queue; a failed one blocks for ``FAILED_JOB_TTL``.
    It is replaced; a duplicate run is harmless, the row's claim decides who acts.
    """
    for _ in range(2):
        try:
            queue.enqueue_call(
                run_money_job,
                args=(operation, row_id),
                job_id=job_id(operation, row_id),
                unique=True,
                result_ttl=0,
                failure_ttl=FAILED_JOB_TTL,
            )
            return True
        except DuplicateJobError:
            pass
        try:
            leftover = Job.fetch(job_id(operation, row_id), connection=queue.connection)
        except NoSuchJobError:
            continue  # it went away between the two calls: enqueue again
        if leftover in waiting:
            return False
        log.info("%s %s: replacing a leftover job (%s)", operation, row_id, leftover.get_status())
        leftover.delete()
    return False


def _run_inline(operation: str, ids: Sequence[int]) -> int:
    app = current_app._get_current_object()

    def one(row_id: int) -> None:
        with app.app_context():
            try:
                execute(operation, row_id)
            except Exception:  # noqa: BLE001 - per-item boundary; the row stays PENDING
                log.exception(
                    "%s %s: money job crashed; the next run will pick it up", operation, row_id
                )

    workers = max(1, min(app.config["MONEY_JOB_CONCURRENCY"], len(ids)))
    if workers == 1:
        for row_id in ids:
            one(row_id)
        return len(ids)
    # Each thread takes the next id when it is free: memory stays flat however many rows
    # (an executor's map would hold a future per row from the start).
    pending, lock = iter(ids), threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                row_id = next(pending, None)
            if row_id is None:
                return
            one(row_id)

    threads = [threading.Thread(target=drain, name=f"money-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(ids)
