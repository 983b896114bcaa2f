"""Fault injection for the Mirakl sandbox API (never applied to ``/_sandbox/*``).

Settings (``POST /_sandbox/faults``, all optional):

* ``latency_ms``: delay every matching request.
* ``sequence``: explicit answers for the next matching requests, consumed in order; each entry
  is a status code (``429`` = rate limit, ``5xx`` = HTML error page, other ``4xx`` = JSON error,
  ``2xx`` = answer normally) or ``"drop"``. While entries remain, the random rates are unused.
* ``drop_rate``: close the connection without answering. Under the werkzeug development server
  the socket is shut down; elsewhere the request hangs ``hang_s`` seconds then answers 504.
* ``rate_limit_rate``: answer 429 with ``Retry-After: <retry_after>`` and a JSON body.
* ``error_rate``: answer 500 with ``<html><body>Internal error</body></html>``.
* ``seed``: seed of the random generator (deterministic runs).
* ``paths``: only requests whose path starts with one of these prefixes are affected.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Response

ERROR_HTML = "<html><body>Internal error</body></html>"
DROP = "drop"


@dataclass
class FaultSettings:
    """Current fault configuration (see module docstring)."""

    rate_limit_rate: float = 0.0
    retry_after: float = 1
    error_rate: float = 0.0
    latency_ms: float = 0
    drop_rate: float = 0.0
    hang_s: float = 5.0
    seed: int | None = None
    paths: list[str] | None = None
    sequence: list[int | str] = field(default_factory=list)


@dataclass
class FaultDecision:
    """What to do with one request: delay it, then maybe answer ``action`` instead."""

    latency_s: float = 0.0
    #: ``None`` (answer normally), ``"drop"``, or an HTTP status code to answer
    action: int | str | None = None


def _rate(settings: dict[str, Any], name: str) -> float:
    value = float(settings[name])
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be between 0 and 1")
    return value


def _sequence_entry(value: Any) -> int | str:
    if value == DROP:
        return DROP
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"sequence entries must be HTTP status codes or 'drop', not {value!r}")
    return value


class FaultInjector:
    """Holds the fault settings and decides, request by request, which fault to inject."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()

    def configure(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Replace the settings with ``raw`` (unknown keys or bad values raise ``ValueError``)."""
        unknown = set(raw) - set(FaultSettings.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        try:
            settings = FaultSettings(
                rate_limit_rate=_rate(raw, "rate_limit_rate") if "rate_limit_rate" in raw else 0,
                retry_after=float(raw.get("retry_after", 1)),
                error_rate=_rate(raw, "error_rate") if "error_rate" in raw else 0,
                latency_ms=float(raw.get("latency_ms", 0)),
                drop_rate=_rate(raw, "drop_rate") if "drop_rate" in raw else 0,
                hang_s=float(raw.get("hang_s", 5.0)),
                seed=None if raw.get("seed") is None else int(raw["seed"]),
                paths=None if raw.get("paths") is None else [str(p) for p in raw["paths"]],
                sequence=[_sequence_entry(entry) for entry in raw.get("sequence") or []],
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from exc
        if settings.retry_after < 0 or settings.latency_ms < 0 or settings.hang_s < 0:
            raise ValueError("retry_after, latency_ms and hang_s must not be negative")
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)
        return self.snapshot()

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._settings = FaultSettings()
            self._random = random.Random()

    def snapshot(self) -> dict[str, Any]:
        """Current settings as JSON (the remaining ``sequence`` included)."""
        with self._lock:
            return asdict(self._settings)

    @property
    def hang_s(self) -> float:
        """Seconds to hang when a drop cannot close the socket."""
        with self._lock:
            return self._settings.hang_s

    @property
    def retry_after(self) -> float:
        """Value of the ``Retry-After`` header on injected 429s."""
        with self._lock:
            return self._settings.retry_after

    def decide(self, path: str) -> FaultDecision:
        """Pick the fault for one API request to ``path`` (consumes a sequence entry)."""
        with self._lock:
            settings = self._settings
            if settings.paths is not None and not any(path.startswith(p) for p in settings.paths):
                return FaultDecision()
            decision = FaultDecision(latency_s=settings.latency_ms / 1000)
            if settings.sequence:
                entry = settings.sequence.pop(0)
                decision.action = None if isinstance(entry, int) and entry < 300 else entry
                return decision
            draw = self._random.random()
            if draw < settings.drop_rate:
                decision.action = DROP
            elif draw < settings.drop_rate + settings.rate_limit_rate:
                decision.action = 429
            elif draw < settings.drop_rate + settings.rate_limit_rate + settings.error_rate:
                decision.action = 500
            return decision


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def fault_response(status: int, retry_after: float) -> Response:
    """The response injected for ``status`` (429 JSON + Retry-After, 5xx HTML, else JSON)."""
    if status == 429:
        response = Response(
            '{"message": "Too Many Requests", "status": 429}',
            status=429,
            mimetype="application/json",
        )
        response.headers["Retry-After"] = _format_seconds(retry_after)
        return response
    if status >= 500:
        return Response(ERROR_HTML, status=status, mimetype="text/html")
    return Response(
        f'{{"message": "Injected error", "status": {status}}}',
        status=status,
        mimetype="application/json",
    )
