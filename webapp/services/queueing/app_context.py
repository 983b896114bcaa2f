"""An app context for code that RQ runs in a worker process."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import has_app_context

F = TypeVar("F", bound=Callable[..., Any])


def with_app_context(func: F) -> F:
    """Run ``func`` in the caller's app context; refuse clearly when there is none.

    The connector's worker (``flask --app wsgi connector worker``) gives every job a fresh
    context of its one app; a job run by a bare ``rq worker`` has none and would otherwise
    fail deep inside with Flask's "working outside of application context".
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not has_app_context():
            raise RuntimeError(
                f"{func.__name__} needs an app context: run jobs with "
                "`flask --app wsgi connector worker`"
            )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
