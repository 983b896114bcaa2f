"""What a setup check says, and the stored result of the last ``connector doctor`` runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select

from webapp.extensions import db
from webapp.models import SetupCheck

KEEP_RESULTS = 200  # stored runs; hourly runs keep about eight days


class Level(StrEnum):
    """How bad a check's finding is; FAIL makes ``connector doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


SEVERITY = {Level.OK: 0, Level.WARN: 1, Level.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    """One line of ``connector doctor``: the check, its level, and what to do about it."""

    name: str
    level: Level
    message: str

    def line(self) -> str:
        """``FAIL  mirakl field stripe-url: ...``, levels aligned."""
        return f"{self.level:<4}  {self.name}: {self.message}"


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, Level.OK, message)


def warn(name: str, message: str) -> CheckResult:
    return CheckResult(name, Level.WARN, message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, Level.FAIL, message)


def worst_level(results: Sequence[CheckResult]) -> Level:
    """The most severe level among ``results`` (ok when there is none)."""
    return max((r.level for r in results), key=SEVERITY.__getitem__, default=Level.OK)


def record_result(results: Sequence[CheckResult], trigger: str) -> SetupCheck:
    """Store one doctor run (committed) and forget the oldest beyond ``KEEP_RESULTS``."""
    row = SetupCheck(
        trigger=trigger,
        outcome=worst_level(results),
        results=json.dumps([asdict(r) for r in results]),
    )
    db.session.add(row)
    db.session.flush()
    db.session.execute(delete(SetupCheck).where(SetupCheck.id <= row.id - KEEP_RESULTS))
    db.session.commit()
    return row


@dataclass(frozen=True)
class StoredResult:
    """A stored doctor run, as the console shows it."""

    checked_at: datetime
    trigger: str
    outcome: Level
    results: list[CheckResult]


def find_last_result() -> StoredResult | None:
    """The latest stored doctor run, or None when doctor never ran."""
    row = db.session.execute(
        select(SetupCheck).order_by(SetupCheck.id.desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    results = [
        CheckResult(item["name"], Level(item["level"]), item["message"])
        for item in json.loads(row.results)
    ]
    return StoredResult(row.checked_at, row.trigger, Level(row.outcome), results)
