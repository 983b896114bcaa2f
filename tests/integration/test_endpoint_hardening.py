"""Public and API endpoints under attack: sizes, nesting, timestamps, errors, headers, logs."""

from __future__ import annotations

import json
import logging
import select as select_module
import socket
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from sandbox.stripe.events import make_event, sign_payload
from tests.live_server import serve
from webapp.extensions import db
from webapp.models import WebhookEvent
from webapp.views import security

SELLERS = "/api/public/webhook/sellers"
API_AUTH = {"X-AUTH-TOKEN": "operator-password"}
MB = 1024 * 1024


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def signed(payload: bytes, timestamp: int | None = None) -> dict[str, str]:
    return {
        "Stripe-Signature": sign_payload(payload, "whsec_sellers", timestamp),
        "Content-Type": "application/json",
    }


def stored_events() -> int:
    return db.session.execute(select(func.count()).select_from(WebhookEvent)).scalar_one()


# ---------------------------------------------------------------- webhook timestamps


def test_a_webhook_signed_in_the_future_is_refused(client):
    """Before: signed with t = now + 1 h, it was answered 200 and stored."""
    event = make_event("account.updated", {"id": "acct_future", "object": "account"})
    payload = json.dumps(event).encode()

    response = client.post(SELLERS, data=payload, headers=signed(payload, int(time.time()) + 3600))

    assert response.status_code == 400
    assert response.get_data(as_text=True) == "Invalid signature."
    assert stored_events() == 0


@pytest.mark.parametrize("offset", [-240, 240], ids=["4-min-old", "4-min-ahead"])
def test_webhook_timestamps_within_the_tolerance_both_ways_are_accepted(client, offset):
    event = make_event("payment_intent.created", {"id": "pi_1", "object": "payment_intent"})
    payload = json.dumps(event).encode()

    response = client.post(
        SELLERS, data=payload, headers=signed(payload, int(time.time()) + offset)
    )

    assert response.status_code == 200


@pytest.mark.parametrize("offset", [-360, 360], ids=["6-min-old", "6-min-ahead"])
def test_webhook_timestamps_beyond_the_tolerance_both_ways_are_refused(client, offset):
    event = make_event("payment_intent.created", {"id": "pi_1", "object": "payment_intent"})
    payload = json.dumps(event).encode()

    response = client.post(
        SELLERS, data=payload, headers=signed(payload, int(time.time()) + offset)
    )

    assert response.status_code == 400


# ---------------------------------------------------------------- deeply nested JSON


def test_a_signed_webhook_nested_100000_deep_is_400_not_500(client):
    payload = b'{"id": "evt_deep", "type": "account.updated", "data": ' + nested(100_000) + b"}"

    response = client.post(SELLERS, data=payload, headers=signed(payload))

    assert response.status_code == 400
    assert response.get_data(as_text=True) == "Invalid payload."
    assert stored_events() == 0


def test_api_mappings_nested_100000_deep_is_400_json(client):
    response = client.post(
        "/api/mappings",
        data=nested(100_000),
        headers={**API_AUTH, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.get_json() == {"message": "Invalid JSON format"}


# ---------------------------------------------------------------- JSON errors under /api


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/transfers/abc", 404),
        ("get", "/api/no-such-thing", 404),
        ("put", "/api/transfers", 405),
        ("get", "/api/public/webhook/sellers", 405),
        ("get", "/api/transfers?page=x", 400),
    ],
)
def test_every_api_error_answers_json(client, method, path, status):
    response = getattr(client, method)(path, headers=API_AUTH)

    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["message"], str)


def test_console_errors_stay_html(client):
    response = client.get("/console/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


# ---------------------------------------------------------------- request size


def test_a_body_over_the_limit_is_413(client):
    response = client.post(SELLERS, data=b"x" * (MB + 1), headers=signed(b"x"))
    assert response.status_code == 413
    api = client.post("/api/mappings", data=b"{" * (2 * MB), headers=API_AUTH)
    assert api.status_code == 413
    assert "larger than 1024 KiB" in api.get_json()["message"]


def stream_body(url: str, path: str, size: int) -> tuple[bytes, int, float]:
    """POST ``size`` bytes of body to a real server as fast as it takes them.

    Returns (the start of the answer, bytes sent before it came, seconds it took).
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: t=1,v1=00\r\nContent-Length: {size}\r\n\r\n"
    )
    chunk = b"0" * (256 * 1024)
    sent, answer, started = 0, b"", time.monotonic()
    sock.sendall(head.encode())
    sock.settimeout(2)
    try:
        while sent < size and time.monotonic() - started < 60:
            readable, _, _ = select_module.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass  # the server stopped reading (or closed): its answer is waiting
    try:
        answer = sock.recv(4096)
    except (ConnectionResetError, TimeoutError):
        answer = b""
    elapsed = time.monotonic() - started
    sock.close()
    return answer, sent, elapsed


def test_a_100_mb_webhook_body_is_refused_before_it_is_read(make_app):
    """Before: the whole 100 MB was read, then answered 400."""
    with serve(make_app()) as url:
        answer, sent, elapsed = stream_body(url, SELLERS, 100 * MB)

    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < 10 * MB
    assert elapsed < 10


# ---------------------------------------------------------------- security headers


def test_console_pages_carry_the_security_headers(client):
    response = client.get("/console/login")

    headers = response.headers
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self' 'nonce-" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "'unsafe-eval'" not in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers  # SCHEME=http in tests
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert client.get("/console/login").headers["Content-Security-Policy"] != policy
    assert len(nonce) >= 20


def test_hsts_is_sent_over_https(make_app):
    app = make_app()
    https = app.test_client().get("/console/login", base_url="https://connector.test")
    assert https.headers["Strict-Transport-Security"] == f"max-age={security.HSTS_MAX_AGE}"
    prod = make_app(SCHEME="https").test_client().get("/console/login")
    assert "max-age=" in prod.headers["Strict-Transport-Security"]


def test_api_and_webhook_answers_carry_the_headers_too(client):
    for response in (client.get("/api/transfers"), client.post(SELLERS, data=b"{}")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# ---------------------------------------------------------------- secrets in the app's logs


def test_refresh_tokens_never_reach_the_logs(app):
    """Whatever logs a refresh URL (an error echoing it, werkzeug's request line)."""
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_connector", False))
    token = "rt_4f9c2b7e1d3a5c6b8e0f"
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1,
        '127.0.0.1 - - "GET /api/public/onboarding/refresh?token=%s&x=1 HTTP/1.1" 302 -',
        (token,), None,
    )  # fmt: skip

    assert handler.filter(record)
    line = handler.format(record)

    assert token not in line
    assert "refresh?token=***&x=1" in line
