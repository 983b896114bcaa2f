"""Fuzzing of what comes from outside (Mirakl payloads, webhooks, API bodies, forms), with
Hypothesis strategies shared by the fuzz suites: JSON-like values, nasty scalars, and
mutations of valid Mirakl items (a field deleted, replaced by garbage, wrapped in a list).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

#: multiplies every fuzz suite's number of examples: ``FUZZ_SCALE=20 pytest tests/fuzz`` hunts
#: for longer than the CI-sized default.
FUZZ_SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))


def examples(count: int) -> int:
    """``count`` Hypothesis examples, times ``FUZZ_SCALE``."""
    return count * FUZZ_SCALE


# Scalars that broke or could break parsers: non-finite numbers, numbers as odd strings,
# unicode digits, ids too long for a column, letters that change length when lowercased.
NASTY_SCALARS: list[Any] = [
    None, True, False, 0, -1, 2**31, -(2**31) - 1, 2**63, 10**20, -(10**20),
    0.1, -12.34, 1e12, 1e13, -1e300, float("nan"), float("inf"), float("-inf"),
    "", " ", "0", "-0", "12,34", "12.34", "-12.34", "1e12", "1e13", "1e-999999999",
    "NaN", "Infinity", "-Infinity", "sNaN", "--5", "²", "١٢", "1_000", "0x10",
    "x" * 300, "İAB", "ÉUR", "EU", "XYZ", "eur", "\x00", "\ud7ff", "2024-13-45T99:99:99Z",
    "2024-01-02T10:00:00+9999", [], {}, [None], [{}], {"amount": "nan"},
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(NASTY_SCALARS),
)

json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path (tuple of keys and indexes) into a JSON-like value, the root first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def _apply(doc: Any, path: tuple, op: str, new: Any) -> Any:
    if not path:
        return new if op != "delete" else {}
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = new
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_mutations: int = 3, *, keep_root: bool = False) -> Any:
    """``base`` with 1..``max_mutations`` fields deleted, replaced by garbage or wrapped;
    with ``keep_root`` the item itself stays an object (the sandbox stores objects only)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = list(paths(doc))[1:] if keep_root else list(paths(doc))
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(["delete", "replace", "replace", "wrap"]))
        # A copy: NASTY_SCALARS holds lists and dicts that a later mutation of this example
        # would otherwise change in place, for every example after it.
        new = copy.deepcopy(draw(json_values)) if op == "replace" else None
        doc = _apply(doc, path, op, new)
    return doc


@st.composite
def maybe_mutated(draw: st.DrawFn, base: Any, max_mutations: int = 3) -> Any:
    """``base`` as is (a third of the time) or mutated, always an object."""
    if draw(st.integers(0, 2)) == 0:
        return copy.deepcopy(base)
    return draw(mutated(base, max_mutations, keep_root=True))
