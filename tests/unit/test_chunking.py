"""The one chunking helper: Mirakl batches, SQL ``IN (…)`` lists, order chunks, pages."""

from __future__ import annotations

import pytest

from webapp.services.chunking import chunked


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        ([], 3, []),
        ([1, 2], 3, [[1, 2]]),
        ([1, 2, 3], 3, [[1, 2, 3]]),
        ([1, 2, 3, 4, 5, 6, 7], 3, [[1, 2, 3], [4, 5, 6], [7]]),
        ("abcd", 1, [["a"], ["b"], ["c"], ["d"]]),
    ],
)
def test_chunked(items, size, expected):
    assert list(chunked(items, size)) == expected


def test_chunked_takes_a_one_shot_iterator():
    # Built inside the test: a generator given as a parameter is spent after one run.
    assert list(chunked((i for i in range(5)), 2)) == [[0, 1], [2, 3], [4]]


def test_chunked_reads_lazily():
    read: list[int] = []

    def source():
        for i in range(10):
            read.append(i)
            yield i

    first = next(chunked(source(), 4))
    assert first == [0, 1, 2, 3]
    assert read == [0, 1, 2, 3]


@pytest.mark.parametrize("size", [0, -1])
def test_chunked_refuses_a_size_that_never_advances(size):
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1], size))
