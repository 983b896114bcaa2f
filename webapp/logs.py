"""Logging, configured once per process before the app runs; secrets are redacted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable

REDACTED = "***"


class RedactSecrets(logging.Filter):
    """Replace any configured secret value that slipped into a log record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = message
        for secret in self.secrets:
            clean = clean.replace(secret, REDACTED)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the job context fields when present."""

    FIELDS = ("job", "run_id")

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            if hasattr(record, field):
                data[field] = getattr(record, field)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def configure_logging(log_format: str, secrets: Iterable[str], level: int = logging.INFO) -> None:
    """Install one stderr handler on the root logger (idempotent across app instances)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_connector", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._connector = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.filters = [RedactSecrets(secrets)]
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(level)
    # Library loggers that would print request headers or bodies stay quiet.
    for noisy in ("urllib3", "stripe", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
