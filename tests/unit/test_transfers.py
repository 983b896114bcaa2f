"""The payment split's pure part: amounts (docs/split.md worked table) and precedence."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from tests.unit.factories import line, product_order, service_debit, service_order
from webapp.models import TransferStatus as T
from webapp.services.split.rules import (
    AccountFacts,
    ChargeFacts,
    Decision,
    PaymentFacts,
    TaxSplit,
    evaluate_order_transfer,
    payment_facts,
)

SHOP = AccountFacts(id=10, mirakl_shop_id=1, stripe_account_id="acct_seller")
IGNORED_SHOP = AccountFacts(id=11, mirakl_shop_id=1, stripe_account_id="acct_x", ignored=True)
TAX_ACCOUNT = AccountFacts(id=20, mirakl_shop_id=0, stripe_account_id="acct_tax")
SPLIT = TaxSplit(enabled=True, account_id="acct_tax")
PAID = service_debit("S-1-A", "OK")
WAITING = service_debit("S-1-A", "WAITING")

NO_TAX_LINES = (
    line("O-1-1", total="12.34", taxes=(), shipping_taxes=()),
    line("O-1-2", total="56.78", taxes=(), shipping_taxes=()),
)
PARTIAL_TAX_LINES = (  # line 1: product taxes only; line 2: shipping taxes only
    line("O-1-1", total="12.34", taxes=("1.56", "1.78"), shipping_taxes=()),
    line("O-1-2", total="56.78", taxes=(), shipping_taxes=("2.12", "2.34")),
)

PRODUCT_CASES = {
    "product basic (TAX_EXCLUDED)": product_order(),
    "product no commission": product_order(commission="0"),
    "product no taxes at all": product_order(lines=NO_TAX_LINES),
    "product TAX_INCLUDED": product_order(tax_mode="TAX_INCLUDED"),
    "product partial tax": product_order(lines=PARTIAL_TAX_LINES),
}
SERVICE_CASES = {
    "service basic": service_order(),
    "service no commission": service_order(commission="0"),
    "service TAX_INCLUDED": service_order(tax_mode="TAX_INCLUDED"),
    "service no tax": service_order(taxes="0"),
    "service partial tax": service_order(taxes="1.56"),
}
CASES = {**PRODUCT_CASES, **SERVICE_CASES}

# case → (no tax split, tax split seller part, tax split _TAX part); docs/split.md table
AMOUNTS = {
    "product basic (TAX_EXCLUDED)": (8073, 7205, 868),
    "product no commission": (8472, 7604, 868),
    "product no taxes at all": (6513, 6513, 0),
    "product TAX_INCLUDED": (6513, 5645, 868),
    "product partial tax": (7293, 6959, 334),
    "service basic": (1415, 1081, 334),
    "service no commission": (1814, 1480, 334),
    "service TAX_INCLUDED": (1081, 1081, 0),
    "service no tax": (1081, 1081, 0),
    "service partial tax": (1237, 1081, 156),
}


def evaluate(order=None, account=SHOP, **facts):
    order = order if order is not None else product_order()
    if order.__class__.__name__ == "ServiceOrder":
        facts.setdefault("debit", PAID)
    return evaluate_order_transfer(order, account, **facts)


@pytest.mark.parametrize("case", list(AMOUNTS))
def test_worked_amounts_without_tax_split(case):
    decision = evaluate(CASES[case])
    assert decision == Decision(T.PENDING, None, AMOUNTS[case][0], "eur", None)


@pytest.mark.parametrize("case", list(AMOUNTS))
def test_worked_amounts_with_tax_split(case):
    _, seller, tax = AMOUNTS[case]
    order = CASES[case]
    assert evaluate(order, tax=SPLIT, tax_account=TAX_ACCOUNT) == Decision(
        T.PENDING, None, seller, "eur"
    )
    twin = evaluate(order, is_tax=True, tax=SPLIT, tax_account=TAX_ACCOUNT)
    if tax:
        assert twin == Decision(T.PENDING, None, tax, "eur")
    else:  # nothing to send to the tax account (the reference aborts it too)
        assert twin == Decision(T.ABORTED, "Amount must be positive, input was: 0", 0, "eur")


def test_zero_decimal_currency_is_not_multiplied_by_100():
    order = product_order(currency="jpy", total="1234", commission="100", lines=())
    assert evaluate(order) == Decision(T.PENDING, None, 1134, "jpy")


def test_partial_refusal_excludes_refused_line_and_its_taxes():
    lines = (
        line("O-1-1", total="12.34"),
        line("O-1-2", state="REFUSED", total="56.78", taxes=("2.56", "2.78")),
    )
    # 12.34 + line 1 taxes 5.80 − 3.99 (total_price already excludes the refused line)
    assert evaluate(product_order(total="12.34", lines=lines)).amount == 1415


def charge(cid="ch_1", status="succeeded", captured=True, refunded=False, currency="eur"):
    return PaymentFacts(cid, status, ChargeFacts(cid, status, captured, refunded, currency))


def intent(status, charge_facts=None):
    return PaymentFacts("pi_1", status, charge_facts)


H, A, IG, P, C = T.ON_HOLD, T.ABORTED, T.IGNORED, T.PENDING, T.CREATED
# The client's parser refuses amounts above 1e12 (mirakl/fields.py); the rule keeps its own
# bound behind it, checked on an order altered past what any parse gives.
BEYOND_PARSER = replace(product_order(lines=()), total_price=Decimal("1e20"))

PRECEDENCE = [
    # (id, order, account, facts, expected status, expected reason)
    ("1 already created", product_order(state="CANCELED"), None, {"transfer_id": "tr_1"}, C, None),
    ("2 tax twin, split off", product_order(), SHOP, {"is_tax": True}, H,
     "Tax split is disabled (ENABLE_PAYMENT_TAX_SPLIT is false)"),
    ("2 no shop id", product_order(shop_id=0), None, {}, H, "No shop ID provided"),
    ("2 shop not mapped", product_order(shop_id=7), None, {}, H,
     "Cannot find Stripe account for shop ID 7"),
    ("2 no tax account id", product_order(), SHOP,
     {"is_tax": True, "tax": TaxSplit(True, "")}, H, "No stripe account ID provided"),
    ("2 tax account not mapped", product_order(), SHOP, {"is_tax": True, "tax": SPLIT}, H,
     "Cannot find Stripe account for ID acct_tax"),
    ("2 before 3", product_order(shop_id=7, state="CANCELED"), None, {}, H,
     "Cannot find Stripe account for shop ID 7"),
    ("3 ignored shop", product_order(state="CANCELED"), IGNORED_SHOP, {}, IG, "Shop 1 is ignored"),
    ("3 ignored shop, tax twin", product_order(), IGNORED_SHOP,
     {"is_tax": True, "tax": SPLIT, "tax_account": TAX_ACCOUNT}, IG, "Shop 1 is ignored"),
    ("4 refused", product_order(state="REFUSED"), SHOP, {}, A,
     "Order cannot be processed, status is REFUSED"),
    ("4 canceled", product_order(state="CANCELED"), SHOP, {}, A,
     "Order cannot be processed, status is CANCELED"),
    ("4 service expired", service_order(state="ORDER_EXPIRED"), SHOP, {}, A,
     "Order cannot be processed, status is ORDER_EXPIRED"),
    ("5 waiting acceptance", product_order(state="WAITING_ACCEPTANCE"), SHOP, {}, H,
     "Order is not ready yet, status is WAITING_ACCEPTANCE"),
    ("5 service scoring", service_order(state="WAITING_SCORING"), SHOP, {}, H,
     "Order is not ready yet, status is WAITING_SCORING"),
    ("6 product not debited", product_order(debited=False), SHOP, {}, H,
     "Order is not ready yet, status is SHIPPING"),
    ("6 service debit waiting", service_order(), SHOP, {"debit": WAITING}, H,
     "Order is not ready yet, status is ORDER_ACCEPTED"),
    ("6 service without debit", service_order(), SHOP, {"debit": None}, H,
     "Order is not ready yet, status is ORDER_ACCEPTED"),
    ("7 payment to look up", product_order(transaction_number="ch_1"), SHOP, {}, H,
     "Payment ch_1 has not been checked in Stripe yet"),
    ("7 stripe not found", product_order(transaction_number="ch_1"), SHOP,
     {"payment": PaymentFacts("ch_1", error="No such charge: 'ch_1'")}, A,
     "No such charge: 'ch_1'"),
    ("7 stripe unreachable", product_order(transaction_number="ch_1"), SHOP,
     {"payment": PaymentFacts("ch_1", unavailable="timeout")}, H,
     "Payment ch_1 could not be checked in Stripe: timeout"),
    ("7 intent canceled", product_order(transaction_number="pi_1"), SHOP,
     {"payment": intent("canceled")}, A, "Payment pi_1 has been canceled"),
    ("7 intent processing", product_order(transaction_number="pi_1"), SHOP,
     {"payment": intent("processing")}, H, "Payment pi_1 is not ready yet, status is processing"),
    ("7 intent charge refunded", product_order(transaction_number="pi_1"), SHOP,
     {"payment": intent("succeeded", charge("ch_9", refunded=True).charge)}, A,
     "Payment ch_9 has been canceled"),
    ("7 charge not captured", product_order(transaction_number="ch_1"), SHOP,
     {"payment": charge(captured=False)}, H,
     "Payment ch_1 is not ready yet, status is succeeded (not captured)"),
    ("7 charge refunded", product_order(transaction_number="ch_1"), SHOP,
     {"payment": charge(refunded=True)}, A, "Payment ch_1 has been canceled"),
    ("7 charge failed", product_order(transaction_number="ch_1"), SHOP,
     {"payment": charge(status="failed", captured=False)}, A, "Payment ch_1 failed"),
    ("7 charge pending", product_order(transaction_number="py_1"), SHOP,
     {"payment": charge("py_1", status="pending", captured=False)}, H,
     "Payment py_1 is not ready yet, status is pending"),
    ("7 currency mismatch", product_order(transaction_number="ch_1"), SHOP,
     {"payment": charge(currency="usd")}, H,
     "Order currency EUR differs from the currency of payment ch_1 (USD)"),
    ("7 mapping charge refunded", product_order(), SHOP,
     {"mapped_charge_id": "ch_1", "payment": charge(refunded=True)}, A,
     "Payment ch_1 has been canceled"),
    ("8 commission above total", product_order(commission="100"), SHOP, {}, A,
     "Amount must be positive, input was: -1528"),
    ("8 negative total", product_order(total="-80", lines=()), SHOP, {}, A,
     "Amount must be positive, input was: -8399"),
    ("8 amount beyond a column (fuzzing)", BEYOND_PARSER, SHOP,
     {}, H, "Amount is too large, input was: 9999999999999999999601"),
    ("8 amount beyond 32 bits is paid", product_order(total="99999999", lines=()), SHOP,
     {}, P, None),
    ("9 pending", product_order(), SHOP, {}, P, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("order", "account", "facts", "status", "reason"),
    [case[1:] for case in PRECEDENCE],
    ids=[case[0] for case in PRECEDENCE],
)
def test_precedence(order, account, facts, status, reason):
    decision = evaluate(order, account, **facts)
    assert (decision.status, decision.reason) == (status, reason)


@pytest.mark.parametrize(
    ("facts", "transaction_id"),
    [
        ({"payment": charge()}, "ch_1"),
        ({"payment": intent("succeeded", charge("ch_7").charge)}, "ch_7"),
        ({"payment": intent("succeeded", None)}, None),  # no charge: paid from the balance
    ],
    ids=["charge", "intent", "intent without charge"],
)
def test_source_transaction_resolved(facts, transaction_id):
    reference = "pi_1" if facts["payment"].payment_id == "pi_1" else "ch_1"
    decision = evaluate(product_order(transaction_number=reference), **facts)
    assert decision == Decision(T.PENDING, None, 8073, "eur", transaction_id)


def test_payment_mapping_is_used_when_mirakl_has_no_transaction_number():
    needs = evaluate(product_order(), mapped_charge_id="ch_1")
    assert needs.needs_payment == "ch_1"
    assert evaluate(product_order(), mapped_charge_id="ch_1", payment=charge()).transaction_id == (
        "ch_1"
    )


def test_service_payment_id_comes_from_its_debit():
    debit = service_debit("S-1-A", "OK", "ch_5")
    assert evaluate(service_order(), debit=debit).needs_payment == "ch_5"
    done = evaluate(service_order(), debit=debit, payment=charge("ch_5"))
    assert done == Decision(T.PENDING, None, 1415, "eur", "ch_5")


@pytest.mark.parametrize(
    "facts",
    [
        {"transaction_id": "ch_stored"},  # resolved on an earlier run: no new look-up
        {"mapped_charge_id": "other-psp-123"},  # not a Stripe id: no source transaction
        {},
    ],
)
def test_no_lookup_needed(facts):
    decision = evaluate(product_order(), **facts)
    assert decision.needs_payment is None
    assert decision.status == T.PENDING
    assert decision.transaction_id == facts.get("transaction_id")


def test_payment_facts_from_stripe_objects():
    ch = {"id": "ch_1", "status": "succeeded", "captured": True, "refunded": False}
    assert payment_facts({**ch, "currency": "EUR"}) == charge()
    pi = {"id": "pi_1", "status": "succeeded", "currency": "eur"}
    assert payment_facts(pi, {**ch, "currency": "eur"}) == intent("succeeded", charge().charge)
    assert payment_facts({"id": "pi_1", "status": "canceled"}) == intent("canceled")
