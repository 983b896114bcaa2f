"""An app context for code that RQ runs in a worker process."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, has_app_context

F = TypeVar("F", bound=Callable[..., Any])
_app: Flask | None = None


def worker_app() -> Flask:
    """The worker's app, built once per process from the environment."""
    global _app
    if _app is None:
        from webapp import create_app

        _app = create_app()
    return _app


def with_app_context(func: F) -> F:
    """Run ``func`` inside an app context: the caller's if there is one, else the worker's."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return func(*args, **kwargs)
        with worker_app().app_context():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
