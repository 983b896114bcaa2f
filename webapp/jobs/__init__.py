"""Scheduled jobs, one module per CLI command (``process_transfer.py`` is ``process-transfer``).

Each job module has a docstring naming its command and schedule, and defines ``NAME``,
``SCHEDULE`` (cron, UTC), ``PARAMS`` (extra click parameters) and ``run(ctx, **params)``.
Job modules are discovered, so a job exists exactly when its workflow does.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

INFRASTRUCTURE = {"cli", "context", "money", "queues", "runner", "scheduler", "worker"}


def job_modules() -> list[ModuleType]:
    """Every job module of this package, ordered by command name."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in INFRASTRUCTURE or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found.append(module)
    return sorted(found, key=lambda m: m.NAME)


def get_job(name: str) -> ModuleType:
    """The job module of a command name, e.g. ``process-transfer``."""
    for module in job_modules():
        if module.NAME == name:
            return module
    raise KeyError(f"unknown job {name!r}")
