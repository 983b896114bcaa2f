"""CSV exports in Chromium: the filtered list downloads as a spreadsheet-ready file."""

from __future__ import annotations

import csv
import io

import pytest

from tests.browser.test_console_dashboard import paid
from webapp.extensions import db
from webapp.models import StripeTransfer, TransferStatus, TransferType
from webapp.services.ledger import transitions

pytestmark = pytest.mark.browser


def test_a_filtered_list_downloads_as_csv(live_url, login, tmp_path):
    paid("E-1-A", 8073, "eur", 0)
    failed = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id="E-2-A",
                            mirakl_shop_id=1, amount=1234, currency="eur")  # fmt: skip
    transitions.create(failed, TransferStatus.PENDING, actor="test")
    transitions.transition(failed, TransferStatus.FAILED, "refused", actor="test")
    db.session.commit()
    page = login("viewer")
    page.goto(f"{live_url}/console/transfers/?flt0_status_equals=TRANSFER_FAILED")
    with page.expect_download() as download:
        page.click("#export-csv")
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [(r["mirakl_id"], r["amount"], r["currency"], r["status"]) for r in rows] == [
        ("E-2-A", "12.34", "EUR", "TRANSFER_FAILED")
    ]
