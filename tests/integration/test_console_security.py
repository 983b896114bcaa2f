"""Console sign-in security over real HTTP: server-side sessions, the login throttle, timing.

The app is served by werkzeug in a thread (``tests/live_server.py``) and driven with
``requests``, cookies and all, as a browser or an attacker would.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from operator import truediv

import flask_login
import pytest
import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.live_server import serve
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.jobs.worker import make_worker
from webapp.models import ConsoleSession, LoginThrottle, OperatorUser
from webapp.services.access.users import create_user
from webapp.services.console_security import sessions, throttle
from webapp.services.queueing.queues import MONEY_QUEUE, get_queue

EMAIL, PASSWORD = "ops@example.com", "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                        r'name="csrf_token" value="([^"]+)"')  # fmt: skip


@pytest.fixture
def console_app(make_app) -> Iterator[Flask]:
    # 127.0.0.1 is the proxy here, so each test client can say which IP it comes from.
    app = make_app(TRUSTED_PROXIES="127.0.0.1")
    with app.app_context():
        yield app


@pytest.fixture
def live_url(console_app: Flask) -> Iterator[str]:
    with serve(console_app) as url:
        yield url


def browser(client_ip: str = "203.0.113.10") -> requests.Session:
    """A cookie-keeping HTTP client coming from ``client_ip`` (through the trusted proxy)."""
    session = requests.Session()
    session.headers["X-Forwarded-For"] = client_ip
    return session


def csrf_token(session: requests.Session, url: str) -> str:
    match = CSRF_INPUT.search(session.get(url, timeout=10).text)
    return match.group(1) or match.group(2)


def log_in(session: requests.Session, base: str, email: str = EMAIL, password: str = PASSWORD):
    token = csrf_token(session, f"{base}/console/login")
    return session.post(
        f"{base}/console/login",
        data={"email": email, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )


def opens_console(
    cookies: dict[str, str], base: str, page: str = "/console/payouts/", ip: str = "203.0.113.10"
) -> bool:
    """Whether a replayed cookie opens ``page`` (from the same IP and agent as its owner)."""
    response = requests.get(
        f"{base}{page}",
        cookies=cookies,
        headers={"X-Forwarded-For": ip},
        allow_redirects=False,
        timeout=10,
    )
    return response.status_code == 200


# ---------------------------------------------------------------- server-side sessions


def test_a_cookie_saved_before_logout_opens_nothing_after_it(console_app, live_url):
    create_user(EMAIL, PASSWORD)
    operator = browser()
    assert log_in(operator, live_url).status_code == 302
    saved = operator.cookies.get_dict()
    assert opens_console(saved, live_url)

    token = csrf_token(operator, f"{live_url}/console/")
    logout = operator.post(
        f"{live_url}/console/logout", data={"csrf_token": token}, allow_redirects=False
    )

    assert logout.status_code == 302
    assert not opens_console(saved, live_url)
    assert not opens_console(saved, live_url, "/console/rq/")
    assert db.session.execute(select(ConsoleSession)).first() is None


def test_a_password_change_ends_the_sessions_made_before_it(console_app, live_url):
    user = create_user(EMAIL, PASSWORD)
    operator = browser()
    log_in(operator, live_url)
    saved = operator.cookies.get_dict()
    assert opens_console(saved, live_url)

    user.password_hash = generate_password_hash("a brand new password")
    db.session.commit()

    assert not opens_console(saved, live_url)


def test_disabling_or_deleting_a_user_ends_their_sessions(console_app, live_url):
    user = create_user(EMAIL, PASSWORD)
    first, second = browser(), browser("203.0.113.11")
    log_in(first, live_url)
    log_in(second, live_url)

    assert sessions.end_user_sessions(user.id) == 2  # what disabling a user calls
    assert not opens_console(first.cookies.get_dict(), live_url)
    assert not opens_console(second.cookies.get_dict(), live_url, ip="203.0.113.11")

    log_in(first, live_url)
    db.session.delete(db.session.get(OperatorUser, user.id))
    db.session.commit()
    assert not opens_console(first.cookies.get_dict(), live_url)


@pytest.mark.parametrize(
    ("column", "age"),
    [("last_seen_at", timedelta(minutes=31)), ("created_at", timedelta(hours=12, minutes=1))],
    ids=["idle-timeout", "absolute-timeout"],
)
def test_sessions_end_after_the_idle_and_the_absolute_timeout(console_app, live_url, column, age):
    create_user(EMAIL, PASSWORD)
    operator = browser()
    log_in(operator, live_url)
    saved = operator.cookies.get_dict()
    assert opens_console(saved, live_url)

    row = db.session.execute(select(ConsoleSession)).scalar_one()
    setattr(row, column, utcnow() - age)
    db.session.commit()

    assert not opens_console(saved, live_url)
    db.session.expire_all()
    assert db.session.execute(select(ConsoleSession)).first() is None


def test_a_busy_session_stays_open_within_the_timeouts(console_app, live_url):
    create_user(EMAIL, PASSWORD)
    operator = browser()
    log_in(operator, live_url)
    row = db.session.execute(select(ConsoleSession)).scalar_one()
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    row.created_at = utcnow() - timedelta(hours=11)
    db.session.commit()

    assert opens_console(operator.cookies.get_dict(), live_url)
    db.session.expire_all()
    assert db.session.get(ConsoleSession, row.id).last_seen_at > utcnow() - timedelta(minutes=1)


def test_a_signed_cookie_without_a_live_session_handle_is_refused(console_app, live_url):
    """What the cookie alone held before: a user id, validly signed with APP_SECRET."""
    user = create_user(EMAIL, PASSWORD)
    headers = {"X-Forwarded-For": "203.0.113.10", "User-Agent": requests.utils.default_user_agent()}
    with console_app.test_request_context(headers=headers):
        serializer = console_app.session_interface.get_signing_serializer(console_app)
        identifier = flask_login.utils._create_identifier()  # what "strong" protection checks
        forged = serializer.dumps({"_user_id": str(user.id), "_fresh": True, "_id": identifier})

    assert not opens_console({"session": forged}, live_url)


# ---------------------------------------------------------------- login throttle


def test_concurrent_wrong_passwords_cannot_slip_past_the_lockout(console_app, live_url):
    """8 wrong passwords at once: all counted (before: each read 0 and wrote 1, no lock)."""
    create_user(EMAIL, PASSWORD)
    attacker = "198.51.100.7"
    clients = [browser(attacker) for _ in range(8)]
    tokens = [csrf_token(c, f"{live_url}/console/login") for c in clients]
    start = threading.Barrier(len(clients))

    def wrong_password(index: int) -> int:
        start.wait()
        return (
            clients[index]
            .post(
                f"{live_url}/console/login",
                data={"email": EMAIL, "password": f"guess {index}", "csrf_token": tokens[index]},
                allow_redirects=False,
                timeout=60,
            )
            .status_code
        )

    with ThreadPoolExecutor(len(clients)) as pool:
        assert list(pool.map(wrong_password, range(len(clients)))) == [401] * len(clients)

    db.session.expire_all()
    _, account_key = throttle.throttle_keys(EMAIL, attacker)
    counter = db.session.get(LoginThrottle, account_key)
    # Every attempt that reached the counter was counted (the racy read-modify-write lost
    # most of them and never locked); one that arrives once the lock is set is refused
    # without being counted, so how many reach it depends on the timing.
    assert throttle.ACCOUNT_IP_LIMIT <= counter.failures <= 8
    assert counter.locked_until > utcnow()
    failed = db.session.execute(select(OperatorUser.failed_logins)).scalar_one()
    assert failed == counter.failures
    # Locked for this IP: the right password is refused from it...
    assert log_in(browser(attacker), live_url).status_code == 401
    # ...but the operator, elsewhere, still logs in: 5 requests cannot lock them out.
    assert log_in(browser("203.0.113.50"), live_url).status_code == 302


def test_one_ip_failing_on_many_accounts_is_refused_everywhere(console_app, live_url):
    create_user(EMAIL, PASSWORD)
    sprayer = "198.51.100.9"
    client = browser(sprayer)
    for index in range(throttle.IP_LIMIT):
        assert log_in(client, live_url, f"user{index}@example.com", "guess").status_code == 401

    assert log_in(browser(sprayer), live_url).status_code == 401
    assert log_in(browser("203.0.113.51"), live_url).status_code == 302


def test_many_ips_together_lock_the_account_at_the_account_limit(console_app):
    user = create_user(EMAIL, PASSWORD)
    now = utcnow()
    for index in range(throttle.ACCOUNT_LIMIT - 1):
        throttle.record_failure(EMAIL, f"10.1.{index // 200}.{index % 200}", user, now)
    assert not throttle.is_throttled(EMAIL, "10.9.9.9", user, now)

    throttle.record_failure(EMAIL, "10.2.0.1", user, now)

    db.session.refresh(user)
    assert user.locked_until == now + throttle.ACCOUNT_LOCK
    assert throttle.is_throttled(EMAIL, "10.9.9.9", user, now)


def median_refusal_time(client: requests.Session, base: str, email: str, rounds: int = 5):
    times = []
    for _ in range(rounds):
        token = csrf_token(client, f"{base}/console/login")
        started = time.perf_counter()
        response = client.post(
            f"{base}/console/login",
            data={"email": email, "password": "not the password", "csrf_token": token},
            allow_redirects=False,
            timeout=30,
        )
        times.append(time.perf_counter() - started)
        assert response.status_code == 401
    return statistics.median(times)


def test_locked_unknown_and_wrong_refusals_take_the_same_time(console_app, live_url):
    """Before: a locked account answered in ~6 ms, an unknown e-mail in ~150 ms."""
    create_user(EMAIL, PASSWORD)
    create_user("locked@example.com", PASSWORD)
    locker = browser("198.51.100.20")
    for _ in range(throttle.ACCOUNT_IP_LIMIT):
        log_in(locker, live_url, "locked@example.com", "guess")

    locked = median_refusal_time(locker, live_url, "locked@example.com")
    unknown = median_refusal_time(browser("198.51.100.21"), live_url, "nobody@example.com")
    wrong = median_refusal_time(browser("198.51.100.22"), live_url, EMAIL)

    slowest, fastest = max(locked, unknown, wrong), min(locked, unknown, wrong)
    assert fastest > 0.25 * slowest, (locked, unknown, wrong)


# ---------------------------------------------------------------- RQ dashboard


def test_rq_dashboard_state_changes_need_post_and_the_csrf_token(console_app, live_url):
    """Before: ``GET /console/rq/requeue/<queue>`` requeued, and no token was asked."""
    create_user(EMAIL, PASSWORD)
    operator = browser()
    log_in(operator, live_url)
    requeue = f"{live_url}/console/rq/requeue/{MONEY_QUEUE}"
    failed = get_queue(MONEY_QUEUE).enqueue(truediv, 1, 0)
    make_worker((MONEY_QUEUE,)).work(burst=True)
    registry = get_queue(MONEY_QUEUE).failed_job_registry
    assert registry.get_job_ids() == [failed.id]
    assert operator.get(f"{live_url}/console/rq/0/data/queues.json").status_code == 200

    assert operator.get(requeue, allow_redirects=False).status_code == 405
    assert operator.post(requeue, allow_redirects=False).status_code == 400
    assert registry.get_job_ids() == [failed.id]

    token = re.search(r'name="csrf-token" content="([^"]+)"', operator.get(
        f"{live_url}/console/rq/").text).group(1)  # fmt: skip
    answer = operator.post(requeue, headers={"X-CSRFToken": token}, allow_redirects=False)
    assert (answer.status_code, answer.json()) == (200, {"status": "OK", "count": 1})
    assert registry.get_job_ids() == []
