"""Sandbox state kept next to localstripe's ``store``: balances, links, events, idempotency.

Stripe objects themselves (accounts, transfers, payouts... and localstripe's charges) live in
localstripe's ``store`` dict under ``"<object>:<id>"`` keys. Everything else the extension
needs lives in :data:`STATE`. Both are in memory; with ``--state-file`` they are pickled to
that path after every mutating request and loaded at start-up.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localstripe.resources import store

from .util import PLATFORM_ACCOUNT_ID

DEFAULT_CURRENCY = "eur"


@dataclass
class IdempotencyRecord:
    """A completed request saved under an idempotency key."""

    method: str
    path: str
    params: str
    status: int
    body: bytes
    content_type: str
    request_id: str
    created_at: float = 0.0  # sandbox clock (:meth:`SandboxState.now`), epoch seconds


@dataclass
class SandboxState:
    """Mutable state of the extension (see module docstring)."""

    # account id (or PLATFORM_ACCOUNT_ID) -> currency -> {"available": int, "pending": int}
    balances: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # account link token -> {"account", "refresh_url", "return_url", "type", "expires_at"}
    account_links: dict[str, dict[str, Any]] = field(default_factory=dict)
    # events emitted by the sandbox (payout.failed, account.updated...), oldest first
    events: list[dict[str, Any]] = field(default_factory=list)
    # (scope, idempotency key) -> saved result
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    # seconds the sandbox clock is ahead of the real one (``POST /_sandbox/clock``)
    clock_offset: float = 0.0

    def reset(self) -> None:
        """Forget everything."""
        self.balances.clear()
        self.account_links.clear()
        self.events.clear()
        self.idempotency.clear()
        self.clock_offset = 0.0

    def now(self) -> float:
        """The sandbox clock (epoch seconds): real time moved by ``clock_offset``."""
        return time.time() + self.clock_offset

    # ------------------------------------------------------------------ balances

    def _entry(self, account: str, currency: str) -> dict[str, int]:
        per_currency = self.balances.setdefault(account, {})
        return per_currency.setdefault(currency.lower(), {"available": 0, "pending": 0})

    def available(self, account: str, currency: str) -> int:
        """Available balance of ``account`` in ``currency`` (0 if never touched)."""
        return self.balances.get(account, {}).get(currency.lower(), {}).get("available", 0)

    def adjust(self, account: str, currency: str, delta: int) -> None:
        """Add ``delta`` (may be negative) to the available balance."""
        self._entry(account, currency)["available"] += delta

    def set_balance(
        self, account: str, currency: str, available: int, pending: int | None = None
    ) -> None:
        """Overwrite the available (and optionally pending) balance."""
        entry = self._entry(account, currency)
        entry["available"] = available
        if pending is not None:
            entry["pending"] = pending

    def balance_json(self, account: str) -> dict[str, Any]:
        """Stripe ``balance`` object for ``account``."""
        per_currency = self.balances.get(account) or {
            DEFAULT_CURRENCY: {"available": 0, "pending": 0}
        }

        def funds(kind: str) -> list[dict[str, Any]]:
            return [
                {
                    "amount": amounts[kind],
                    "currency": currency,
                    "source_types": {"card": amounts[kind]},
                }
                for currency, amounts in sorted(per_currency.items())
            ]

        return {
            "object": "balance",
            "available": funds("available"),
            "pending": funds("pending"),
            "livemode": False,
        }


STATE = SandboxState()

_state_file: Path | None = None


def configure_persistence(path: str | os.PathLike[str] | None) -> None:
    """Persist to ``path`` (load it now if it exists); ``None`` keeps everything in memory."""
    global _state_file
    _state_file = Path(path) if path else None
    if _state_file is not None and _state_file.exists():
        with _state_file.open("rb") as handle:
            saved = pickle.load(handle)
        store.clear()
        store.update(saved["store"])
        STATE.reset()
        for name in ("balances", "account_links", "idempotency"):
            getattr(STATE, name).update(saved["sandbox"].get(name, {}))
        STATE.events.extend(saved["sandbox"].get("events_list", []))
        STATE.clock_offset = saved["sandbox"].get("clock_offset", 0.0)


def save() -> None:
    """Write the state file (atomically) if persistence is configured."""
    if _state_file is None:
        return
    snapshot = {
        "store": dict(store),
        "sandbox": {
            "balances": STATE.balances,
            "account_links": STATE.account_links,
            "events_list": STATE.events,
            "idempotency": STATE.idempotency,
            "clock_offset": STATE.clock_offset,
        },
    }
    _state_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=_state_file.parent, prefix=".stripe-state-")
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(snapshot, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, _state_file)


def reset_all() -> None:
    """Empty localstripe's store and the sandbox state (the platform account is implicit)."""
    store.clear()
    STATE.reset()


__all__ = [
    "DEFAULT_CURRENCY",
    "PLATFORM_ACCOUNT_ID",
    "STATE",
    "IdempotencyRecord",
    "SandboxState",
    "configure_persistence",
    "reset_all",
    "save",
]
