"""The foreground of a demo run: the loop that steps the simulators, and the final summary.

The loop prints a progress line every :data:`~sandbox.demo.settings.PROGRESS_PERIOD` seconds;
with ``--check`` it polls until the state the demo promises (:meth:`Progress.is_complete`) is
reached or the time is up. It drives a :class:`~sandbox.demo.session.Demo`, which reads its
counts from :mod:`~sandbox.demo.progress`, so it sits above both.
"""

from __future__ import annotations

import sqlite3
import time

import requests

from sandbox.demo.processes import tail
from sandbox.demo.progress import summary_table
from sandbox.demo.session import Demo
from sandbox.demo.settings import PROGRESS_PERIOD, SIMULATOR_PERIOD
from sandbox.demo.simulators import SellerSimulator


def run_foreground(demo: Demo, simulator: SellerSimulator, deadline: float | None) -> bool:
    """Step the simulators and report progress until Ctrl-C, a dead child, or ``deadline``
    (``--check``: until the expected state); return whether the expected state was reached."""
    next_report = time.monotonic() + PROGRESS_PERIOD
    while True:
        dead = demo.dead_child()
        if dead is not None:
            demo.say(f"{dead.name} exited with {dead.process.returncode}: {tail(dead)}")
            return False
        now = time.monotonic()
        try:
            simulator.step()
            demo.catch_up()
            progress = demo.progress() if deadline is not None or now >= next_report else None
        except (requests.RequestException, sqlite3.Error, RuntimeError) as exc:
            demo.say(f"(will try again: {exc})")  # e.g. a sandbox or the web app is busy
            progress = None
        if progress is not None and now >= next_report:
            demo.say(progress.line())
            next_report = now + PROGRESS_PERIOD
        if deadline is not None and progress is not None and progress.is_complete():
            return True
        if deadline is not None and now >= deadline:
            return False
        time.sleep(SIMULATOR_PERIOD)


def print_summary(demo: Demo) -> None:
    """The final counts, when the web app and the database can still tell them."""
    try:
        print(summary_table(demo.progress()), flush=True)
    except (requests.RequestException, sqlite3.Error) as exc:
        demo.say(f"no summary: {exc}")
