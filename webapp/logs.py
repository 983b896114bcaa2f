"""Logging, configured once per process before the app runs; secrets are redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REDACTED = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(job)s %(run_id)s] %(name)s: %(message)s"

# The job and run a log line belongs to, set by the job runner for the run's duration.
job_context: ContextVar[tuple[str, int] | None] = ContextVar("job_context", default=None)


@contextmanager
def job_logging(job: str, run_id: int) -> Iterator[None]:
    """Tag every log line emitted during a job run with the job name and run id."""
    token = job_context.set((job, run_id))
    try:
        yield
    finally:
        job_context.reset(token)


class AddJobContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = job_context.get()
        record.job, record.run_id = context if context else ("-", "-")
        return True


# A credential in a URL's query (``?token=`` of onboarding refresh links, ``refresh_token``,
# ``password``...): its value is masked wherever a URL is logged (an error echoing the URL,
# werkzeug's request lines in development).
QUERY_SECRET = re.compile(r"(\b\w*(?:token|password|secret)=)[^&\s\"'<>]+", re.I)


class RedactSecrets(logging.Filter):
    """Replace any configured secret value, or credential in a URL, that slipped into a log."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = QUERY_SECRET.sub(r"\1" + REDACTED, message) if "=" in message else message
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
            if getattr(record, field, "-") != "-":
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
    handler.filters = [AddJobContext(), RedactSecrets(secrets)]
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.setLevel(level)
    # Library loggers that would print request headers or bodies stay quiet.
    for noisy in ("urllib3", "stripe", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
