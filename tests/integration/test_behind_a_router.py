"""Behind a router (TRUSTED_PROXIES → ProxyFix): public scheme, host and prefix; Secure cookies.

Requests reach the app the way a platform's router hands them over: plain HTTP from the
router's address, with what the client asked for in ``X-Forwarded-*``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select

from sandbox.mirakl.demo import make_shop
from webapp.extensions import db
from webapp.models import AccountMapping
from webapp.services.access.users import create_user

PUBLIC = {"SCHEME": "https", "BASE_HOST": "connector.example.com", "APP_ENV": "prod"}
ROUTER = {"REMOTE_ADDR": "10.0.0.5", "HTTP_HOST": "web-1.internal:8000"}
FORWARDED = {
    "X-Forwarded-For": "203.0.113.1",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "connector.example.com",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/connector",
}
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
EMAIL, PASSWORD = "ops@example.com", "correct horse battery"


def routed(app) -> FlaskClient:
    """A test client whose requests come from the router, with the forwarded headers."""
    client = app.test_client()
    client.environ_base.update(ROUTER)
    return client


def log_in(client: FlaskClient, **headers: str):
    page = client.get("/console/login", headers=FORWARDED)
    token = CSRF_INPUT.search(page.get_data(as_text=True)).group(1)
    return client.post(
        "/console/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
        headers={**FORWARDED, **headers},
    )


def test_console_redirects_keep_the_public_prefix_when_the_router_is_trusted(make_app):
    app = make_app(TRUSTED_PROXIES="1", **PUBLIC)

    answer = routed(app).get("/console/?page=2", headers=FORWARDED)

    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/connector/console/login"
    assert parse_qs(location.query)["next"] == ["/connector/console/?page=2"]


def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted(make_app):
    app = make_app(**PUBLIC)  # TRUSTED_PROXIES unset: anyone could have sent the headers

    answer = routed(app).get("/console/", headers=FORWARDED)

    location = urlsplit(answer.headers["Location"])
    assert location.path == "/console/login"
    assert parse_qs(location.query)["next"] == ["/console/"]


def test_login_over_https_through_the_router_sets_a_secure_cookie(make_app):
    app = make_app(TRUSTED_PROXIES="10.0.0.0/8", **PUBLIC)
    with app.app_context():
        create_user(EMAIL, PASSWORD)
    client = routed(app)

    answer = log_in(client, Referer="https://connector.example.com/connector/console/login")

    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert answer.headers["Location"] == "/connector/console/"
    cookies = answer.headers.getlist("Set-Cookie")
    (session,) = [c for c in cookies if c.startswith("session=")]
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Lax" in session
    assert app.config["REMEMBER_COOKIE_SECURE"] is True  # Flask-Login's, should one be set


def test_the_app_knows_the_request_was_https(make_app):
    """Flask-WTF checks the Referer of HTTPS form posts only: a post without one through the
    trusted router is refused, which shows the app saw ``https`` and the public host."""
    app = make_app(TRUSTED_PROXIES="1", **PUBLIC)
    with app.app_context():
        create_user(EMAIL, PASSWORD)

    assert log_in(routed(app)).status_code == 400
    elsewhere = log_in(routed(app), Referer="https://web-1.internal:8000/console/login")
    assert elsewhere.status_code == 400
    good = log_in(routed(app), Referer="https://connector.example.com/connector/console/login")
    assert good.status_code == 302


def test_a_client_cannot_claim_https_past_a_listed_proxy(make_app):
    """With the proxies listed by address, a client that connects directly is not believed."""
    app = make_app(TRUSTED_PROXIES="10.0.0.0/8", **PUBLIC)
    with app.app_context():
        create_user(EMAIL, PASSWORD)
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": "198.51.100.7", "HTTP_HOST": "web-1.internal"})

    answer = log_in(client)  # no Referer: accepted, as the request was plain HTTP

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/"


def test_onboarding_refresh_links_use_the_public_scheme_and_host(make_app, mirakl, stripe):
    app = make_app(TRUSTED_PROXIES="1", **PUBLIC)
    mirakl.add_shops([make_shop(1)])
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["connector", "sync-onboarding"])
        assert result.exit_code == 0, result.output
        token = db.session.execute(select(AccountMapping.onboarding_token)).scalar_one()
    stripe.clear_requests()
    headers = {**FORWARDED, "X-Forwarded-Prefix": ""}

    answer = routed(app).get(f"/api/public/onboarding/refresh?token={token}", headers=headers)

    assert answer.status_code == 302
    (link,) = stripe.requests(path_prefix="/v1/account_links", method="POST")
    assert f"https://connector.example.com/api/public/onboarding/refresh?token={token}" in str(link)
    assert "internal" not in str(link)
