"""Scheduled jobs, one module per CLI command (``process_transfer.py`` is ``process-transfer``).

Each job module has a docstring naming its command and schedule, and defines ``NAME``,
``SCHEDULE`` (cron, UTC), ``PARAMS`` (extra click parameters) and ``run(ctx, **params)``.
A job is listed here only once its workflow exists.
"""

from __future__ import annotations

JOB_MODULES: tuple[str, ...] = ()
