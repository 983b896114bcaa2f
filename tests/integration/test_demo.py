"""``python -m sandbox.demo --check``: the whole demo, as ``make demo`` runs it, end to end.

The demo runs as a subprocess on free ports, with this session's Redis database and a
temporary instance folder; it must reach the promised state, print the console URL and the
credentials, and stop every process it started.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
CHECK_TIMEOUT = 150  # seconds the demo may take to reach its state (about 45 s here)


def run_demo(instance: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "sandbox.demo", "--check", "--timeout", str(CHECK_TIMEOUT),
        "--instance-dir", str(instance), "--redis-url", redis_url, "--workers", "2",
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=CHECK_TIMEOUT + 60
    )


def table_row(output: str, kind: str) -> dict[str, int]:
    """One row of the summary table, e.g. ``{"CREATED": 20, "FAILED": 2, ...}``."""
    header = re.search(r"^\s+(CREATED.*)$", output, re.M).group(1).split()
    values = re.search(rf"^{kind}\s+([\d\s]+)$", output, re.M).group(1).split()
    return dict(zip(header, map(int, values), strict=True))


def test_demo_reaches_its_promised_state_and_stops_cleanly(tmp_path: Path, redis_url: str):
    instance = tmp_path / "demo"

    result = run_demo(instance, redis_url)

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "check: demo state reached" in output
    web_url = re.search(r"Console\s+(http://127\.0\.0\.1:\d+)/console", output).group(1)
    assert re.search(r"E-mail\s+admin@demo\.example\.com", output)
    assert re.search(r"Password\s+\S{20,}", output)

    refunds, transfers, payouts = (
        table_row(output, k) for k in ("refunds", "transfers", "payouts")
    )
    assert refunds["CREATED"] == 2
    assert transfers["CREATED"] >= 18 and transfers["ABORTED"] == 1 and transfers["ON_HOLD"] == 1
    assert payouts["CREATED"] >= 1 and payouts["ON_HOLD"] == 1
    assert "webhooks: account.updated processed 3, charge.succeeded processed 8" in output
    # connector doctor ran at start, with the endpoints the demo registered: nothing failed.
    assert re.search(r"setup checks \(connector doctor\): ok \d+, warn \d+;", output), output

    with sqlite3.connect(instance / "connector.db") as conn:
        reasons = dict(conn.execute("SELECT mirakl_id, status_reason FROM stripe_transfer"))
        payments = dict(conn.execute("SELECT status, COUNT(*) FROM payment_mapping GROUP BY 1"))
        debited = conn.execute(
            "SELECT COUNT(*) FROM payment_mapping WHERE mirakl_debit_status = 'OK'"
        ).fetchone()[0]
        setup = conn.execute("SELECT trigger, outcome FROM setup_check").fetchall()
    assert reasons["DEMO-1005-A"].startswith("Order currency EUR differs from the currency")
    assert reasons["DEMO-1006-A"].startswith("Transfer amount (8073) exceeds")
    assert reasons["DEMO-1008-A"] == "Order cannot be processed, status is CANCELED"
    assert payments == {"captured": 8}
    assert debited == 1
    assert setup == [("cli", "warn")]  # shown on the console's dashboard

    # Every child process is gone: the web app no longer answers.
    try:
        requests.get(f"{web_url}/healthz", timeout=2)
        answered = True
    except requests.ConnectionError:
        answered = False
    assert not answered
