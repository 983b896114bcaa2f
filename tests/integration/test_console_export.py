"""CSV exports: the list's filters applied, streamed in batches, Mirakl ids first, major units."""

from __future__ import annotations

import csv
import io

from sqlalchemy import insert

from tests.integration.test_console_roles import client_as, console  # noqa: F401 - fixture
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import StripePayout, StripeTransfer

ROWS = 2500  # more than one EXPORT_BATCH


def add_transfers() -> None:
    now = utcnow()
    db.session.execute(
        insert(StripeTransfer),
        [
            {"type": "TRANSFER_PRODUCT_ORDER", "mirakl_id": f"X-{n}-A", "mirakl_shop_id": 7,
             "amount": 8073 if n % 2 else 500, "currency": "eur" if n % 2 else "jpy",
             "status": "TRANSFER_FAILED" if n % 5 == 0 else "TRANSFER_CREATED",
             "status_reason": "=HYPERLINK(\"http://evil\")" if n == 0 else "refused",
             "creation_datetime": now, "modification_datetime": now}
            for n in range(ROWS)
        ],
    )  # fmt: skip
    db.session.commit()


def read_csv(answer) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


def test_a_filtered_list_exports_only_its_rows_streamed(console):  # noqa: F811
    add_transfers()
    viewer = client_as(console, "viewer")  # reading is enough to export
    answer = viewer.get("/console/transfers/export.csv?flt0_status_equals=TRANSFER_FAILED")
    assert answer.status_code == 200 and answer.is_streamed
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = read_csv(answer)
    assert len(rows) == ROWS // 5
    assert {r["status"] for r in rows} == {"TRANSFER_FAILED"}
    header = answer.get_data(as_text=True).splitlines()[0].split(",")
    assert header[:3] == ["mirakl_id", "mirakl_shop_id", "type"]
    by_id = {r["mirakl_id"]: r for r in rows}
    assert (by_id["X-5-A"]["amount"], by_id["X-5-A"]["currency"]) == ("80.73", "EUR")
    assert (by_id["X-10-A"]["amount"], by_id["X-10-A"]["currency"]) == ("500", "JPY")
    assert by_id["X-0-A"]["status_reason"].startswith("'=")  # never a formula

    searched = read_csv(viewer.get("/console/transfers/export.csv?search=X-25-A"))
    assert [r["mirakl_id"] for r in searched] == ["X-25-A"]


def test_every_list_exports(console):  # noqa: F811
    payout = StripePayout(mirakl_invoice_id=93117, mirakl_shop_id=1, amount=15230,
                          currency="eur", status="PAYOUT_FAILED")  # fmt: skip
    db.session.add(payout)
    db.session.commit()
    admin = client_as(console, "admin")
    for view in ("shops", "transfers", "refunds", "payouts", "payments", "job_runs",
                 "notifications", "webhook_events", "audit"):  # fmt: skip
        answer = admin.get(f"/console/{view}/export.csv")
        assert answer.status_code == 200, view
        assert answer.get_data(as_text=True).count("\n") >= 1, view
    (row,) = read_csv(admin.get("/console/payouts/export.csv"))
    assert (row["mirakl_invoice_id"], row["amount"], row["currency"]) == ("93117", "152.30", "EUR")
    assert list(row)[0] == "mirakl_invoice_id"
    assert 'id="export-csv"' in admin.get("/console/payouts/").get_data(as_text=True)
