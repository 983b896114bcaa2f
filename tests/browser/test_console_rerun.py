"""Rerun from a date: an admin moves a job's checkpoint, the next run reads from there."""

from __future__ import annotations

import pytest

from tests.browser.conftest import save_screenshot
from webapp.services.ledger import checkpoints

pytestmark = pytest.mark.browser

KEY = "product_payment_split_checkpoint"


def test_an_admin_reruns_process_transfer_from_a_date(
    live_url, login, console_app, mirakl, tmp_path
):
    checkpoints.set_checkpoint(KEY, "2026-11-30T10:00:00+0000")
    page = login("admin")
    page.goto(f"{live_url}/console/checkpoints/")
    row = page.locator(f"#checkpoints tr[data-key='{KEY}']")
    assert "2026-11-30T10:00:00+0000" in row.inner_text()
    row.locator("input[name=date]").fill("2026-11-20")
    row.locator("input[name=time]").fill("06:30")
    row.locator("input[name=reason]").fill("Mirakl outage on the 20th")
    row.locator("button.rerun").click()
    page.wait_for_load_state()
    assert "The next process-transfer run reads from 2026-11-20T06:30:00+0000." in page.inner_text(
        ".alert-success"
    )
    assert (
        "2026-11-20T06:30:00+0000"
        in page.locator(f"#checkpoints tr[data-key='{KEY}'] .checkpoint-value").inner_text()
    )

    save_screenshot(page, tmp_path, "rerun.png")
    mirakl.clear_requests()
    result = console_app.test_cli_runner().invoke(args=["connector", "process-transfer"])
    assert result.exit_code == 0, result.output
    orders = mirakl.requests("/api/orders")
    assert any(r["query"].get("start_date") in ("2026-11-20T06:30:00+0000",
               ["2026-11-20T06:30:00+0000"]) for r in orders), orders  # fmt: skip

    page.goto(f"{live_url}/console/audit/?search=process-transfer")
    audit = page.inner_text("table.model-list")
    assert "rerun_from" in audit and "Mirakl outage on the 20th" in audit
    assert "2026-11-30T10:00:00+0000 → 2026-11-20T06:30:00+0000" in audit


def test_an_operator_sees_the_checkpoints_but_cannot_move_them(live_url, login):
    page = login("operator")
    page.goto(f"{live_url}/console/checkpoints/")
    assert page.locator("#checkpoints tbody tr").count() == 4
    assert page.locator("button.rerun").count() == 0
