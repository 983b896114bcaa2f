"""``connector import-reference --from URL [--dry-run]`` from a reference-shaped PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from sandbox.reference_db import (
    CHECKPOINTS,
    OLD,
    create_reference_db,
    drop_reference_db,
    insert,
    seed_example,
)
from tests.conftest import PG_SERVER
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Config,
    OperationEvent,
    PaymentMapping,
    StripePayout,
    StripeRefund,
    StripeTransfer,
)
from webapp.services.ledger.checkpoints import set_checkpoint
from webapp.services.payouts.money_job import released_by

ACCOUNTS = {11: "acct_ref_eleven", 12: "acct_ref_twelve", 0: "acct_ref_tax"}
MODELS = (AccountMapping, PaymentMapping, StripeTransfer, StripeRefund, StripePayout)


@pytest.fixture
def reference() -> Iterator[str]:
    url = create_reference_db(PG_SERVER)
    yield url
    drop_reference_db(url)


def run(runner, url: str, *flags: str):
    result = runner.invoke(args=["connector", "import-reference", "--from", url, *flags])
    db.session.expire_all()
    return result


def counts() -> dict[str, int]:
    tables = {m.__tablename__: m for m in (*MODELS, OperationEvent)}
    found = {
        name: db.session.scalar(select(func.count()).select_from(m)) for name, m in tables.items()
    }
    found["config"] = db.session.scalar(
        select(func.count()).select_from(Config).where(Config.value.is_not(None))
    )
    return found


def transfer(mirakl_id: str, kind: str = "TRANSFER_PRODUCT_ORDER") -> StripeTransfer:
    return db.session.execute(
        select(StripeTransfer).where(
            StripeTransfer.mirakl_id == mirakl_id, StripeTransfer.type == kind
        )
    ).scalar_one()


def test_imports_every_table_and_a_second_run_changes_nothing(app, runner, reference):
    seeded = seed_example(reference, ACCOUNTS)
    # Symfony's DATABASE_URL form, with Doctrine's options, is accepted as it is.
    url = f"{reference}?serverVersion=13&charset=utf8"

    result = run(runner, url)

    assert result.exit_code == 0, result.output
    assert "stripe_transfer: 8 in the reference, 8 to import, 0 already here, 0 conflicts" in (
        result.output
    )
    assert counts() == {**seeded, "operation_event": 15}  # one per money row
    mappings = {m.mirakl_shop_id: m for m in db.session.execute(select(AccountMapping)).scalars()}
    assert {shop: m.stripe_account_id for shop, m in mappings.items()} == ACCOUNTS
    assert mappings[11].onboarding_token is None and mappings[11].details_submitted
    assert mappings[12].onboarding_token == f"{1:032x}"  # a link in a seller's hands still works
    assert {c.key: c.value for c in db.session.execute(select(Config)).scalars()} == CHECKPOINTS
    created = transfer("CO-1-A")
    assert (created.status, created.transfer_id, created.amount, created.account_mapping_id) == (
        "TRANSFER_CREATED",
        "tr_ref_1",
        8000,
        mappings[11].id,
    )
    assert created.mirakl_shop_id == 11 and created.attempted_at is None
    # Rows the reference may have sent without recording it are "claimed, outcome unknown":
    # our money job looks them up in Stripe before sending anything.
    assert transfer("CO-8-A").attempted_at == OLD and transfer("CO-5-A").attempted_at == OLD
    assert transfer("CO-4-A").attempted_at is None
    assert transfer("R-1", "TRANSFER_REFUND").transaction_id == "tr_ref_1"
    refund = db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == "R-1")
    ).scalar_one()
    assert (refund.status, refund.stripe_refund_id, refund.mirakl_validation_time) == (
        "REFUND_CREATED",
        "re_ref_1",
        OLD,
    )
    payout = db.session.execute(
        select(StripePayout).where(StripePayout.mirakl_invoice_id == 501)
    ).scalar_one()
    assert (payout.status, payout.payout_id, payout.mirakl_shop_id) == (
        "PAYOUT_CREATED",
        "po_ref_1",
        11,
    )
    history = db.session.execute(
        select(OperationEvent).where(OperationEvent.operation == "transfer").limit(1)
    ).scalar_one()
    assert (history.actor, history.from_status) == ("import-reference", None)

    again = run(runner, url)

    assert again.exit_code == 0, again.output
    assert "stripe_transfer: 8 in the reference, 0 to import, 8 already here, 0 conflicts" in (
        again.output
    )
    assert "account_mapping: 3 in the reference, 0 to import, 3 already here" in again.output
    assert counts() == {**seeded, "operation_event": 15}


def test_dry_run_counts_and_writes_nothing(app, runner, reference):
    seed_example(reference, ACCOUNTS)

    result = run(runner, reference, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "payment_mapping: 3 in the reference, 3 to import, 0 already here, 0 conflicts" in (
        result.output
    )
    assert "config: 4 in the reference, 4 to import" in result.output
    assert "dry run: nothing written" in result.output
    assert counts() == dict.fromkeys(
        ("account_mapping", "payment_mapping", "stripe_transfer", "stripe_refund", "stripe_payout",
         "operation_event", "config"), 0,
    )  # fmt: skip


def test_a_shop_mapped_to_another_account_refuses_and_changes_nothing(app, runner, reference):
    seed_example(reference, ACCOUNTS)
    db.session.add(AccountMapping(mirakl_shop_id=12, stripe_account_id="acct_ours_twelve"))
    db.session.add(AccountMapping(mirakl_shop_id=99, stripe_account_id="acct_ref_eleven"))
    db.session.commit()

    dry = run(runner, reference, "--dry-run")
    result = run(runner, reference)

    assert dry.exit_code == 1
    assert (
        "conflict: shop 11: Stripe account acct_ref_eleven is mapped to shop 99 in our database"
        in dry.output
    )
    assert (
        "conflict: shop 12: stripe_account_id is 'acct_ours_twelve' in our database but "
        "'acct_ref_twelve' in the reference" in dry.output
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: import-reference: shop 11: Stripe account acct_ref_eleven is mapped to shop 99 "
        "in our database (and 1 more conflicts: --dry-run lists them); nothing imported"
    ]
    assert counts()["stripe_transfer"] == 0 and counts()["account_mapping"] == 2
    assert counts()["config"] == 0


def test_money_facts_that_differ_refuse_naming_the_mirakl_id(app, runner, reference):
    seed_example(reference, ACCOUNTS)
    run(runner, reference)
    # A fact our jobs added since (a transfer id the reference never had) is not a conflict.
    transfer("CO-4-A").transfer_id = "tr_ours"
    db.session.commit()
    insert(
        reference,
        "stripe_refund",
        [{"mirakl_refund_id": "R-3", "mirakl_order_id": "CO-1-A", "amount": 1, "currency": "eur",
          "status": "REFUND_PENDING"}],
    )  # fmt: skip
    assert run(runner, reference).exit_code == 0
    pending = db.session.execute(
        select(StripeRefund).where(StripeRefund.mirakl_refund_id == "R-3")
    ).scalar_one()
    assert pending.status == "REFUND_PENDING"
    transfer("CO-1-A").transfer_id = "tr_other"
    set_checkpoint("seller_settlement_checkpoint", "2030-01-01T00:00:00+0000")
    db.session.commit()

    result = run(runner, reference, "--dry-run")

    assert result.exit_code == 1
    assert (
        "conflict: TRANSFER_PRODUCT_ORDER CO-1-A: transfer_id is 'tr_other' in our database but "
        "'tr_ref_1' in the reference" in result.output
    )
    assert (
        "conflict: checkpoint seller_settlement_checkpoint: value is '2030-01-01T00:00:00+0000' "
        "in our database but '2024-01-04T00:00:00+0000' in the reference" in result.output
    )


def test_an_unknown_status_is_a_conflict_not_a_guess(app, runner, reference):
    insert(
        reference,
        "stripe_payout",
        [{"mirakl_invoice_id": 9, "amount": 1, "currency": "eur", "status": "PAYOUT_SOMETHING"}],
    )

    result = run(runner, reference)

    assert result.exit_code == 1
    assert "invoice 9: payout status 'PAYOUT_SOMETHING' is not one of the reference's" in (
        result.output
    )


def test_a_database_that_is_not_the_reference_fails_in_one_line(app, runner):
    missing = run(runner, f"{PG_SERVER.rsplit('/', 1)[0]}/no_such_database_here")
    wrong = run(runner, "mysql://user:secret@host/db")

    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1
    assert "error: import-reference: cannot read" in missing.output
    assert wrong.exit_code == 1
    assert "PostgreSQL URL" in wrong.output and "secret" not in wrong.output


def test_an_imported_invoice_transfer_without_an_invoice_number_frees_its_fees(
    app, runner, reference, caplog
):
    """The reference's ``mirakl_id`` is free text: an invoice transfer imported with one that
    is not a number still lets its invoice's fees go when it is done, and names why no
    payout follows, instead of failing the money job after the transfer was made."""
    common = {"mirakl_id": "INV-7", "currency": "eur", "modification_datetime": OLD}
    insert(
        reference,
        "stripe_transfer",
        [
            {**common, "type": "TRANSFER_EXTRA_CREDITS", "status": "TRANSFER_CREATED",
             "transfer_id": "tr_ref_credit", "amount": 500},
            {**common, "type": "TRANSFER_SUBSCRIPTION", "status": "TRANSFER_PENDING",
             "amount": 999},
        ],
    )  # fmt: skip
    assert run(runner, reference).exit_code == 0

    credit = transfer("INV-7", "TRANSFER_EXTRA_CREDITS")
    fee = transfer("INV-7", "TRANSFER_SUBSCRIPTION")

    assert released_by(credit.id) == [("transfer", [fee.id])]
    assert f"transfer {credit.id} (TRANSFER_EXTRA_CREDITS 'INV-7'): not an invoice number" in (
        caplog.text
    )
