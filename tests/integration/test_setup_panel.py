"""The dashboard's setup panel: the last doctor result and "Run checks now" (CSRF, login)."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.jobs.cli import connector_cli
from webapp.models import SetupCheck
from webapp.services.access.users import create_user

EMAIL, PASSWORD = "admin@example.com", "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_token(client: FlaskClient, url: str) -> str:
    return CSRF_INPUT.search(client.get(url).get_data(as_text=True)).group(1)


def logged_in(app: Flask) -> FlaskClient:
    create_user(EMAIL, PASSWORD)
    client = app.test_client()
    token = csrf_token(client, "/console/login")
    response = client.post(
        "/console/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return client


def stored_runs() -> int:
    return db.session.execute(select(func.count()).select_from(SetupCheck)).scalar_one()


def test_panel_shows_the_last_cli_result(app: Flask, stripe, mirakl) -> None:
    client = logged_in(app)
    page = client.get("/console/").get_data(as_text=True)
    assert 'id="setup-panel"' in page and "never checked" in page
    assert app.test_cli_runner().invoke(connector_cli, ["doctor"]).exit_code == 1
    page = client.get("/console/").get_data(as_text=True)
    assert re.search(r'id="setup-outcome">FAIL<', page)
    assert re.search(r"checked \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(cli\)", page)
    # No endpoint is registered in the emptied sandbox: the panel says what to do.
    assert "webhook sellers" in page
    assert "no endpoint for http://connector.test/api/public/webhook/sellers" in page


def test_run_checks_now(app: Flask, stripe, mirakl) -> None:
    client = logged_in(app)
    token = csrf_token(client, "/console/")
    response = client.post("/console/setup/check", data={"csrf_token": token})
    assert response.status_code == 302
    assert stored_runs() == 1
    row = db.session.execute(select(SetupCheck)).scalar_one()
    assert row.trigger == "console"
    page = client.get("/console/").get_data(as_text=True)
    assert "Setup checks: 2 failed; see the setup panel." in page
    assert "(console)" in page


def test_run_checks_now_needs_csrf_and_login(app: Flask, stripe, mirakl) -> None:
    anonymous = app.test_client()
    response = anonymous.post("/console/setup/check")
    assert response.status_code in (302, 400)
    client = logged_in(app)
    refused = client.post("/console/setup/check")
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    assert stored_runs() == 0
