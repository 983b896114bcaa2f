"""Idempotency keys of Account Link and Login Link requests (ledger/keys.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from webapp.services.ledger.keys import link_idempotency_key

KEY = "mirakl-connector:account_link:acct_1:1704067200123"


@pytest.mark.parametrize(
    "requested_at",
    [
        pytest.param(datetime(2024, 1, 1, 0, 0, 0, 123000), id="naive, read as UTC"),
        pytest.param(datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC), id="UTC"),
        pytest.param(
            datetime(2024, 1, 1, 2, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2))),
            id="another offset, same instant",
        ),
    ],
)
def test_link_key_names_the_instant_in_milliseconds(requested_at):
    assert link_idempotency_key("account_link", "acct_1", requested_at) == KEY


def test_link_keys_a_millisecond_apart_differ():
    first = datetime(2024, 1, 1, tzinfo=UTC)
    keys = {
        link_idempotency_key("login_link", "acct_1", first + timedelta(milliseconds=ms))
        for ms in (0, 1)
    }
    assert keys == {
        "mirakl-connector:login_link:acct_1:1704067200000",
        "mirakl-connector:login_link:acct_1:1704067200001",
    }
