"""The demo's one error: setting it up failed."""

from __future__ import annotations


class DemoError(RuntimeError):
    """Setting the demo up failed; the message says what to do."""
