"""Seller settlement rules at their amount bounds (docs/payouts.md).

The worked examples live in test_payouts.py; this table pins what mutation testing found
loose (docs/testing.md): 1 is a positive payout, ``MAX_AMOUNT`` itself fits the
column, and one more is held with the amount left out and its reason word for word.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from webapp.models import PayoutStatus as P
from webapp.models import TransferStatus as T
from webapp.services.ledger.minor_units import MAX_AMOUNT
from webapp.services.payouts.rules import Decision, evaluate_invoice_transfer, evaluate_payout

D = Decimal
MAX_EUR = D("92233720368547758.07")  # MAX_AMOUNT cents
ABOVE_MAX_EUR = D("92233720368547758.08")
TOO_LARGE = "Amount is too large, input was: 9223372036854775808"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(MAX_EUR, Decision(T.PENDING, MAX_AMOUNT), id="MAX_AMOUNT credit"),
        pytest.param(-MAX_EUR, Decision(T.PENDING, MAX_AMOUNT), id="MAX_AMOUNT fee"),
        pytest.param(ABOVE_MAX_EUR, Decision(T.ON_HOLD, None, TOO_LARGE), id="above, credit"),
        pytest.param(-ABOVE_MAX_EUR, Decision(T.ON_HOLD, None, TOO_LARGE), id="above, fee"),
        pytest.param(D("-0.01"), Decision(T.PENDING, 1), id="one cent fee"),
    ],
)
def test_invoice_transfer_amount_bounds(value, expected):
    assert evaluate_invoice_transfer(value, "eur", 1, has_account=True) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(MAX_EUR, Decision(P.PENDING, MAX_AMOUNT), id="MAX_AMOUNT"),
        pytest.param(ABOVE_MAX_EUR, Decision(P.ON_HOLD, None, TOO_LARGE), id="above"),
        pytest.param(D("0.01"), Decision(P.PENDING, 1), id="one cent"),
        pytest.param(
            D("0"), Decision(P.ABORTED, 0, "Amount must be positive, input was: 0"), id="zero"
        ),
    ],
)
def test_payout_amount_bounds(value, expected):
    decision = evaluate_payout(value, "eur", 1, has_account=True, payouts_enabled=True)
    assert decision == expected
