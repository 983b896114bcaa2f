"""Where the demo stands: counts from the console's data, and the summary table.

:meth:`Progress.is_complete` is the state the demo promises; the foreground loop
(:mod:`~sandbox.demo.foreground`) polls for it with ``--check``.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sandbox import demo_data
from sandbox.demo.settings import KINDS


@dataclass
class Progress:
    """What the console shows: counts per kind and status, and a few totals."""

    statuses: dict[str, Counter[str]]
    shops: int = 0
    shops_onboarded: int = 0
    payments: Counter[str] = field(default_factory=Counter)
    job_runs: Counter[str] = field(default_factory=Counter)
    webhooks: Counter[str] = field(default_factory=Counter)  # "type status" → count
    notifications: int = 0

    def count(self, kind: str, status: str) -> int:
        """Rows of ``kind`` (transfers, refunds, payouts) in ``status`` (without its prefix)."""
        prefix = {"transfers": "TRANSFER_", "refunds": "REFUND_", "payouts": "PAYOUT_"}[kind]
        return self.statuses[kind][prefix + status]

    def is_complete(self) -> bool:
        """The state ``make demo`` promises within a couple of minutes."""
        return (
            self.shops_onboarded >= 3
            and self.payments["captured"] >= 1
            and self.payments["to_capture"] == 0
            and all(self.count(kind, "CREATED") >= 1 for kind in KINDS)
            and self.count("transfers", "FAILED") >= 1
            # Only the order paid in the wrong currency waits: a refund's reversal held
            # because the first round refunded before it split has been made since.
            and self.count("transfers", "ON_HOLD") == 1
            and self.count("transfers", "PENDING") == 0
            and self.count("payouts", "FAILED") >= 1
            and self.count("payouts", "ON_HOLD") >= 1
            and self.webhooks["account.updated processed"] >= 3
            and self.webhooks["payout.failed processed"] >= 1
            and self.notifications >= 1
        )

    def line(self) -> str:
        """One progress line: shops, payments, then created/failed per kind and on hold."""
        parts = [f"shops onboarded {self.shops_onboarded}/{self.shops}"]
        parts.append(f"payments captured {self.payments['captured']}")
        for kind in KINDS:
            created, failed = self.count(kind, "CREATED"), self.count(kind, "FAILED")
            parts.append(f"{kind} {created} created/{failed} failed")
        parts.append(f"on hold {sum(self.count(k, 'ON_HOLD') for k in KINDS)}")
        return ", ".join(parts)


def collect_progress(web_url: str, token: str, database: Path) -> Progress:
    """Counts from the operator API (money rows, mappings) and the database (payments, runs)."""
    session = requests.Session()
    session.headers.update({"X-AUTH-TOKEN": token, "Accept": "application/json"})

    def fetch(path: str) -> list[dict[str, Any]]:
        response = session.get(f"{web_url}/api/{path}?itemsPerPage=1000", timeout=10)
        response.raise_for_status()
        return response.json()

    statuses = {kind: Counter(row["status"] for row in fetch(kind)) for kind in KINDS}
    mappings = fetch("mappings")
    progress = Progress(statuses)
    progress.shops = len(demo_data.shops())
    progress.shops_onboarded = sum(1 for m in mappings if m["payoutEnabled"])
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        progress.payments = Counter(
            dict(conn.execute("SELECT status, COUNT(*) FROM payment_mapping GROUP BY status"))
        )
        progress.job_runs = Counter(
            dict(conn.execute("SELECT outcome, COUNT(*) FROM job_run GROUP BY outcome"))
        )
        query = "SELECT type || ' ' || status, COUNT(*) FROM webhook_event GROUP BY 1"
        progress.webhooks = Counter(dict(conn.execute(query)))
    return progress


def finished_runs(database: Path) -> int:
    """Job runs recorded as finished (the CLI's first sync-onboarding included)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        query = "SELECT COUNT(*) FROM job_run WHERE outcome != 'running'"
        return conn.execute(query).fetchone()[0]


def summary_table(progress: Progress) -> str:
    """Rows per kind and status, then shops, payments and job runs."""
    statuses = ("CREATED", "PENDING", "FAILED", "ON_HOLD", "ABORTED", "IGNORED")
    lines = [f"{'':10}" + "".join(f"{s:>10}" for s in statuses)]
    for kind in KINDS:
        lines.append(f"{kind:10}" + "".join(f"{progress.count(kind, s):>10}" for s in statuses))
    lines.append(f"shops onboarded: {progress.shops_onboarded}/{progress.shops}")
    lines.append("payments: " + format_counts(progress.payments))
    lines.append("job runs: " + format_counts(progress.job_runs))
    lines.append("webhooks: " + format_counts(progress.webhooks))
    lines.append(f"operator notifications received: {progress.notifications}")
    return "\n".join(lines)


def format_counts(counter: Mapping[str, int]) -> str:
    """``key count`` pairs in key order, comma-separated, or ``none``."""
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"
