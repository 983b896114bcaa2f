"""Security of the console in real headless Chromium: framing, CSP, CSRF through the RQ pages.

The console is served on one port of 127.0.0.1; a hostile page is served on another. The
two are different origins but the same *site*, so the browser sends the console's
``SameSite=Lax`` cookie along with the hostile page's requests: only the CSRF token and the
POST-only routes stand between a logged-in operator and a forged requeue.
"""

from __future__ import annotations

import operator

import pytest
from flask import Flask
from rq.job import Job

from tests.live_server import serve
from webapp.extensions import db
from webapp.jobs.worker import make_worker
from webapp.models import AccountMapping, StripeTransfer, TransferStatus, TransferType
from webapp.services.ledger import transitions
from webapp.services.queueing.queues import MONEY_QUEUE, get_queue

pytestmark = pytest.mark.browser


def hostile_site(html: str) -> Flask:
    """Another origin on 127.0.0.1 serving one page."""
    site = Flask("hostile")
    site.add_url_rule("/", "index", lambda: html)
    return site


def failed_money_job() -> str:
    """A job in the money queue's failed registry (it divided by zero)."""
    job = get_queue(MONEY_QUEUE).enqueue(operator.truediv, 1, 0)
    make_worker((MONEY_QUEUE,)).work(burst=True)
    assert get_queue(MONEY_QUEUE).failed_job_registry.get_job_ids() == [job.id]
    return job.id


def failed_ids() -> list[str]:
    return get_queue(MONEY_QUEUE).failed_job_registry.get_job_ids()


def some_rows() -> int:
    mapping = AccountMapping(mirakl_shop_id=1, mirakl_shop_name="Shop 1",
                             stripe_account_id="acct_1")  # fmt: skip
    db.session.add(mapping)
    db.session.commit()
    row = StripeTransfer(
        type=TransferType.PRODUCT_ORDER.value, mirakl_id="C-1-A", mirakl_shop_id=1,
        account_mapping_id=mapping.id, amount=1000, currency="eur", transaction_id="ch_1",
    )  # fmt: skip
    transitions.create(row, TransferStatus.PENDING, None, actor="test")
    transitions.transition(row, TransferStatus.FAILED, "Refused.", actor="money-job")
    db.session.commit()
    return row.id


def test_the_login_page_does_not_render_inside_another_sites_frame(console_app, live_url, browser):
    """Before: the login form loaded inside any site's iframe (clickjacking)."""
    site = hostile_site(f'<h1>Win a prize</h1><iframe src="{live_url}/console/login"></iframe>')
    with serve(site) as hostile_url:
        page = browser.new_page()
        messages: list[str] = []
        page.on("console", lambda message: messages.append(message.text))
        page.goto(hostile_url)
        page.wait_for_timeout(1000)

        frame = page.frames[1]
        assert frame.locator("input[name=password]").count() == 0
    assert any("frame-ancestors" in text for text in messages), messages


def test_console_pages_raise_no_csp_violation(live_url, login):
    transfer_id = some_rows()
    failed_money_job()
    errors: list[str] = []
    page = login(errors=errors)

    for path in (
        "/console/",
        "/console/transfers/",
        f"/console/transfers/details/?id={transfer_id}",
        "/console/payouts/",
        "/console/shops/",
        "/console/jobs/",
        "/console/webhook_events/",
        "/console/rq/",
        f"/console/rq/0/view/jobs/{MONEY_QUEUE}/failed/8/asc/1",
        "/console/rq/0/view/workers",
    ):
        page.goto(f"{live_url}{path}")
        page.wait_for_load_state("networkidle")

    # The list's widgets run (Flask-Admin's filter menu, its inline handlers included).
    page.goto(f"{live_url}/console/transfers/")
    page.click("text=Add Filter")
    page.click("a.filter >> nth=0")
    page.wait_for_timeout(300)
    assert page.locator(".filter-op").count() >= 1
    # The RQ dashboard's scripts ran: its jobs table is filled from JSON.
    page.goto(f"{live_url}/console/rq/0/view/jobs/{MONEY_QUEUE}/failed/8/asc/1")
    page.wait_for_selector("table#jobs tr[data-role=job]")

    assert not errors, "\n".join(errors)


def test_rq_dashboard_actions_need_the_console_csrf_token(live_url, login):
    """Before: ``GET /console/rq/requeue/<queue>`` in an <img> requeued every failed job."""
    job_id = failed_money_job()
    page = login()
    # The operator has looked at the dashboard (as they would, before being lured away).
    page.goto(f"{live_url}/console/rq/0/view/jobs/{MONEY_QUEUE}/failed/8/asc/1")
    page.wait_for_selector(f"table#jobs tr[data-job-id='{job_id}']")
    hostile = hostile_site(
        f'<img src="{live_url}/console/rq/requeue/{MONEY_QUEUE}">'
        f'<form id="f" method="post" action="{live_url}/console/rq/job/{job_id}/requeue"></form>'
        '<script>document.getElementById("f").submit();</script>'
    )
    with serve(hostile) as hostile_url:
        page.goto(hostile_url)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)

    assert failed_ids() == [job_id]
    assert get_queue(MONEY_QUEUE).count == 0

    # The operator's own click in the dashboard sends the token and works.
    page.goto(f"{live_url}/console/rq/0/view/jobs/{MONEY_QUEUE}/failed/8/asc/1")
    page.wait_for_selector(f"table#jobs tr[data-job-id='{job_id}']")
    page.click("#requeue-all-btn")
    page.click("#confirmation-modal-yes")
    for _ in range(50):  # the dashboard posts in the background
        if not failed_ids():
            break
        page.wait_for_timeout(100)
    assert failed_ids() == []
    assert get_queue(MONEY_QUEUE).job_ids == [job_id]
    assert Job.fetch(job_id, connection=get_queue(MONEY_QUEUE).connection).get_status() == "queued"
