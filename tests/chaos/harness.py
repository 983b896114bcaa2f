"""Crash-test machinery: real worker processes killed with SIGKILL, recovery runs, counts.

A trial runs a job in queued mode (money operations go to the RQ money queue, as under
the scheduler) while real ``flask connector worker money`` subprocesses drain the queue and
are killed at a seeded point (after the N-th money request the sandbox received, plus a
small seeded delay), then runs the job again with ``PENDING_RECHECK_AFTER=0`` and a worker
that is not killed until nothing is PENDING. The sandboxes then say what really happened.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry

from sandbox.stripe.control import StripeControl
from webapp.extensions import db
from webapp.jobs.runner import run_job
from webapp.jobs.table import get_job
from webapp.jobs.worker import make_worker
from webapp.services.queueing.queues import MONEY_QUEUE

ROOT = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("CHAOS_TRIALS", "6"))
FIRST_SEED = int(os.environ.get("CHAOS_SEED", "0"))
RECOVERY_RUNS = 6  # bound on recovery runs before a PENDING row counts as lost
POLL = 0.01  # seconds between looks at the Stripe request journal
WORKER_TIMEOUT = 60  # seconds a killed process may take to reach its kill point
MONEY_PATHS = ("/v1/transfers", "/v1/refunds", "/v1/payouts")  # reversals: /v1/transfers/…
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")


def seeds() -> list[int]:
    """The trial seeds: ``CHAOS_TRIALS`` of them from ``CHAOS_SEED`` (defaults 6 and 0)."""
    return list(range(FIRST_SEED, FIRST_SEED + TRIALS))


def process_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a connector subprocess: the test's settings and nothing else of ours."""
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    return {**env, **settings, "PYTHONUNBUFFERED": "1"}


def start_connector(env: dict[str, str], *args: str) -> subprocess.Popen:
    """``python -m flask --app wsgi connector ARGS`` in the repository; its log goes to a
    temporary file (``proc.log``), shown when the process misbehaves."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "connector", *args],
        cwd=ROOT,
        env=process_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def log_tail(proc: subprocess.Popen, size: int = 3000) -> str:
    """The end of a connector subprocess's log."""
    proc.log.seek(0)  # type: ignore[attr-defined]
    return proc.log.read().decode(errors="replace")[-size:]  # type: ignore[attr-defined]


def stripe_posts(stripe: StripeControl) -> int:
    """How many money-moving Stripe POSTs (transfers, reversals, refunds, payouts) the
    sandbox has received, answered or not."""
    return sum(
        1
        for request in stripe.requests(path_prefix="/v1/", method="POST")
        if request["path"].startswith(MONEY_PATHS)
    )


@dataclass(frozen=True)
class Kill:
    """Where a trial kills a process: after ``posts`` more Stripe POSTs, then ``delay`` s."""

    posts: int
    delay: float

    @classmethod
    def draw(cls, rng: random.Random, most: int) -> Kill:
        return cls(posts=rng.randint(1, max(1, most)), delay=rng.choice([0, 0, 0.005, 0.02]))


@functools.cache
def _redis(url: str) -> Redis:
    return Redis.from_url(url)


def is_money_queue_idle(redis_url: str) -> bool:
    """Nothing waiting in the money queue and nothing being worked on."""
    queue = Queue(MONEY_QUEUE, connection=_redis(redis_url))
    return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0


def kill_at(
    proc: subprocess.Popen,
    seen: Callable[[], int],
    kill: Kill,
    start: int | None = None,
    is_idle: Callable[[], bool] = lambda: False,
) -> bool:
    """SIGKILL ``proc`` once ``seen()`` (e.g. money POSTs Stripe received) has grown by
    ``kill.posts`` since ``start`` (default: now), after ``kill.delay`` s, or once it has
    been idle for two looks in a row. Return whether it was killed mid-work."""
    start = seen() if start is None else start
    deadline = time.monotonic() + WORKER_TIMEOUT
    idle_looks = 0
    try:
        while proc.poll() is None:
            idle_looks = idle_looks + 1 if is_idle() else 0
            if idle_looks >= 2:
                return False  # all done before the kill point: stop() kills an idle worker
            assert time.monotonic() < deadline, (
                f"the connector process never reached {kill}: "
                f"{seen() - start} requests seen; its log:\n{log_tail(proc)}"
            )
            if seen() - start >= kill.posts:
                time.sleep(kill.delay)
                if proc.poll() is not None:
                    return False
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                return True
            time.sleep(POLL if idle_looks == 0 else 0.05)
        return False
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGKILL a connector subprocess (and its children) if still running; close its log."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    proc.log.close()  # type: ignore[attr-defined]


def run_queued(name: str) -> Any:
    """One run of job ``name`` as the scheduler runs it: money operations are enqueued."""
    run, _ = run_job(name, get_job(name).run, trigger="scheduler", inline=False)
    db.session.expire_all()
    return run


def drain_money_queue() -> None:
    """Drain the money queue with a worker that is not killed (in this process)."""
    make_worker((MONEY_QUEUE,)).work(burst=True, with_scheduler=False)
    db.session.expire_all()


@dataclass
class Recovery:
    """What the recovery runs did: how many runs, and their outcomes."""

    runs: int = 0
    outcomes: list[str] = field(default_factory=list)


def recover(app: Flask, name: str, is_settled: Callable[[], bool]) -> Recovery:
    """Run ``name`` queued and drain the money queue until ``is_settled()`` or the bound."""
    recovery = Recovery()
    with app.app_context():
        while recovery.runs < RECOVERY_RUNS:
            recovery.runs += 1
            recovery.outcomes.append(run_queued(name).outcome)
            drain_money_queue()
            if is_settled():
                break
    return recovery


def count_by(objects: Iterable[dict[str, Any]], metadata_key: str) -> Counter[str]:
    """How many live Stripe objects carry each value of ``metadata[metadata_key]``."""
    return Counter(
        str((obj.get("metadata") or {}).get(metadata_key))
        for obj in objects
        if obj.get("status") not in ("failed", "canceled")
    )
