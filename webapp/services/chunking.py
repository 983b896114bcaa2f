"""Cutting a sequence or any iterable into lists of at most N items.

Mirakl id filters and writes, SQL ``IN (…)`` lists, order chunks and reconciliation pages all
go through ``chunked``; each caller keeps its own size constant, named where its reason is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items, read lazily from ``items``.

    Raises:
        ValueError: ``size`` is below 1 (it would never advance).
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
