"""The demo's fixed values: paths, credentials of the sandboxes, the jobs, timings, ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INSTANCE = ROOT / "instance" / "demo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
ADMIN_EMAIL = "admin@demo.example.com"
MIRAKL_API_KEY = "demo-operator-key"
STRIPE_SECRET_KEY = "sk_test_demo_connector"
JOBS = (
    "sync-onboarding",
    "validate-pending-debit",
    "process-transfer",
    "process-refund",
    "process-payout",
    "notify-failed-operation",
    "monitor-kyc-status",
)
EVERY_MINUTE = "* * * * *"
START_TIMEOUT = 30.0  # seconds a server may take to answer
STOP_TIMEOUT = 10.0  # seconds a child gets to exit after SIGTERM
SIMULATOR_PERIOD = 2.0  # seconds between two steps of the simulators
PROGRESS_PERIOD = 30.0  # seconds between two progress lines in the foreground
CHECK_TIMEOUT = 180.0  # seconds --check waits for the expected state
KINDS = ("transfers", "refunds", "payouts")
DEMO_FILES = frozenset({"connector.db", "connector.db-wal", "connector.db-shm", "logs"})


@dataclass(frozen=True)
class Ports:
    """The ports on 127.0.0.1 of the web app, both sandboxes and the notification receiver."""

    web: int
    mirakl: int
    stripe: int
    notifications: int

    @property
    def web_url(self) -> str:
        """The web app's base URL."""
        return f"http://127.0.0.1:{self.web}"
