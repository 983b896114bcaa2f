"""Roles and the audit trail over the Flask test client: every action is checked on the server."""

from __future__ import annotations

import re

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    AuditEvent,
    OperationEvent,
    OperatorUser,
    StripeTransfer,
    TransferStatus,
    TransferType,
)
from webapp.services.access.users import create_user
from webapp.services.ledger import checkpoints, transitions
from webapp.services.queueing.queues import JOBS_QUEUE, MONEY_QUEUE, get_queue

PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


@pytest.fixture
def console(make_app) -> Flask:
    app = make_app(ENABLE_PRODUCT_PAYMENT_SPLIT="true")
    app.test_client_class = FreshClient
    with app.app_context():
        yield app


class FreshClient(FlaskClient):
    """A client whose requests don't see what another client's request cached in ``g``.

    The test's app context is shared by every request, and Flask-Login (the user) and
    Flask-WTF (the CSRF token) cache in ``g``: two clients would otherwise mix.
    """

    def open(self, *args, **kwargs):
        for key in ("_login_user", "csrf_token"):
            g.pop(key, None)
        return super().open(*args, **kwargs)


def token(client: FlaskClient, url: str = "/console/login") -> str:
    return CSRF_INPUT.search(client.get(url).get_data(as_text=True)).group(1)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD):
    data = {"email": email, "password": password, "csrf_token": token(client)}
    return client.post("/console/login", data=data)


def client_as(app: Flask, role: str) -> FlaskClient:
    email = f"{role}@example.com"
    create_user(email, PASSWORD, role=role)
    client = app.test_client()
    assert log_in(client, email).status_code == 302
    return client


def failed_transfer(mirakl_id: str = "V-1-A") -> int:
    row = StripeTransfer(type=TransferType.PRODUCT_ORDER.value, mirakl_id=mirakl_id, amount=100,
                         currency="eur")  # fmt: skip
    transitions.create(row, TransferStatus.PENDING, None, actor="test")
    transitions.transition(row, TransferStatus.FAILED, "refused", actor="test")
    db.session.commit()
    return row.id


def audit_rows(action: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.execute(query).scalars())


def events_of(row_id: int) -> int:
    return len(
        db.session.execute(
            select(OperationEvent.id).where(OperationEvent.operation_id == row_id)
        ).all()
    )


@pytest.mark.parametrize(
    "action, extra", [("retry", {}), ("abort", {"reason": "no"}), ("ignore", {"reason": "no"})]
)
def test_a_viewer_posting_a_money_action_gets_403_and_changes_nothing(console, action, extra):
    viewer = client_as(console, "viewer")
    row_id = failed_transfer()
    before = events_of(row_id)
    answer = viewer.post(
        "/console/transfers/action/",
        data={"action": action, "rowid": [str(row_id)], "csrf_token": token(viewer,
              "/console/transfers/"), **extra},
    )  # fmt: skip
    assert answer.status_code == 403
    db.session.expire_all()
    row = db.session.get(StripeTransfer, row_id)
    assert (row.status, row.queued_at) == ("TRANSFER_FAILED", None)
    assert events_of(row_id) == before
    assert get_queue(MONEY_QUEUE).count == 0
    assert audit_rows(action) == []


def test_a_viewer_cannot_run_a_job_or_touch_a_shop_but_reads_everything(console):
    viewer = client_as(console, "viewer")
    csrf = token(viewer, "/console/transfers/")
    ran = viewer.post("/console/jobs/run", data={"job": "process-transfer", "csrf_token": csrf})
    assert ran.status_code == 403
    assert get_queue(JOBS_QUEUE).count == 0
    shop = AccountMapping(mirakl_shop_id=1, stripe_account_id="acct_1")
    db.session.add(shop)
    db.session.commit()
    link = viewer.post("/console/shops/action/", data={"action": "refresh_link",
                       "rowid": [str(shop.id)], "csrf_token": csrf})  # fmt: skip
    assert link.status_code == 403
    failed_transfer()
    for url in ("/console/", "/console/transfers/", "/console/shops/", "/console/jobs/",
                "/console/audit/", "/console/payouts/", "/console/refunds/"):  # fmt: skip
        assert viewer.get(url).status_code == 200, url
    listing = viewer.get("/console/transfers/").get_data(as_text=True)
    assert "retry-row" not in listing and "action-rowtoggle" not in listing
    assert "run-now" not in viewer.get("/console/jobs/").get_data(as_text=True)
    assert viewer.get("/console/users/").status_code == 403


def test_an_operator_retries_and_the_audit_trail_records_it(console):
    operator = client_as(console, "operator")
    row_id = failed_transfer("V-9-A")
    answer = operator.post(
        "/console/transfers/action/",
        data={"action": "abort", "rowid": [str(row_id)], "reason": "duplicate order",
              "csrf_token": token(operator, "/console/transfers/")},
    )  # fmt: skip
    assert answer.status_code == 302
    (event,) = audit_rows("abort")
    assert (event.actor, event.target_type, event.target_id) == (
        "operator@example.com",
        "transfer",
        str(row_id),
    )
    assert (event.mirakl_id, event.reason, event.outcome) == (
        "order V-9-A",
        "duplicate order",
        "done",
    )
    assert operator.get("/console/users/").status_code == 403
    csrf = token(operator, "/console/")
    invite = {"email": "x@example.com", "role": "admin", "csrf_token": csrf}
    assert operator.post("/console/users/invite", data=invite).status_code == 403
    assert (
        db.session.execute(
            select(OperatorUser).where(OperatorUser.email == "x@example.com")
        ).first()
        is None
    )


def test_an_admin_invites_disables_enables_and_resets_users(console):
    admin = client_as(console, "admin")
    csrf = token(admin, "/console/users/")
    page = admin.post("/console/users/invite", data={"email": "New@Example.com",
                      "role": "viewer", "csrf_token": csrf}).get_data(as_text=True)  # fmt: skip
    password = re.search(r'id="new-password-value" value="([^"]+)"', page).group(1)
    user = db.session.execute(
        select(OperatorUser).where(OperatorUser.email == "new@example.com")
    ).scalar_one()
    assert user.role == "viewer" and password not in user.password_hash
    newcomer = console.test_client()
    assert log_in(newcomer, "new@example.com", password).status_code == 302
    assert password not in admin.get("/console/users/").get_data(as_text=True)  # shown once

    admin.post(f"/console/users/{user.id}/disable", data={"csrf_token": csrf})
    assert newcomer.get("/console/transfers/").status_code == 302  # the session ended
    assert log_in(console.test_client(), "new@example.com", password).status_code == 401
    admin.post(f"/console/users/{user.id}/enable", data={"csrf_token": csrf})
    reset = admin.post(f"/console/users/{user.id}/reset", data={"csrf_token": csrf})
    fresh = re.search(r'id="new-password-value" value="([^"]+)"', reset.get_data(as_text=True))
    assert log_in(console.test_client(), "new@example.com", password).status_code == 401
    assert log_in(console.test_client(), "new@example.com", fresh.group(1)).status_code == 302
    admin.post(f"/console/users/{user.id}/role", data={"role": "operator", "csrf_token": csrf})
    db.session.expire_all()
    assert db.session.get(OperatorUser, user.id).role == "operator"

    me = db.session.execute(
        select(OperatorUser).where(OperatorUser.email == "admin@example.com")
    ).scalar_one()
    last = admin.post(f"/console/users/{me.id}/disable", data={"csrf_token": csrf},
                      follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "is the last active admin" in last
    actions = [e.action for e in audit_rows() if e.target_id == str(user.id)]
    assert actions == [
        "user_invite", "login", "user_disable", "user_enable", "user_reset_password", "login",
        "user_role",
    ]  # fmt: skip
    failed = [e.mirakl_id for e in audit_rows("login_failed")]
    assert failed == ["new@example.com", "new@example.com"]  # disabled, then the old password
    assert password not in str([(e.reason, e.outcome) for e in audit_rows()])


def test_logins_and_failed_logins_are_audited(console):
    create_user("ops@example.com", PASSWORD, role="operator")
    assert log_in(console.test_client(), "ops@example.com", "wrong").status_code == 401
    assert log_in(console.test_client(), "ops@example.com").status_code == 302
    assert [(e.action, e.actor) for e in audit_rows()] == [
        ("login_failed", "ops@example.com"),
        ("login", "ops@example.com"),
    ]


def test_the_audit_trail_is_append_only(console):
    admin = client_as(console, "admin")
    (event,) = audit_rows("login")
    csrf = token(admin, "/console/")
    admin.post("/console/audit/delete/", data={"id": event.id, "csrf_token": csrf})
    admin.post(f"/console/audit/edit/?id={event.id}", data={"actor": "x", "csrf_token": csrf})
    assert [(e.id, e.actor) for e in audit_rows("login")] == [(event.id, "admin@example.com")]
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("UPDATE audit_event SET actor = 'someone else'"))
    db.session.rollback()
    assert audit_rows("login")[0].actor == "admin@example.com"


@pytest.mark.parametrize("role, expected", [([], "admin"), (["--role", "viewer"], "viewer")])
def test_create_admin_makes_an_admin_unless_given_a_role(console, role, expected):
    runner = console.test_cli_runner()
    result = runner.invoke(args=["connector", "create-admin", "cli@example.com", "--generate",
                                 *role])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"({expected})" in result.output
    user = db.session.execute(select(OperatorUser)).scalar_one()
    assert user.role == expected
    bad = runner.invoke(args=["connector", "create-admin", "b@example.com", "--role", "root"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_admin_may_rerun_a_job_from_a_date(console, role):
    client = client_as(console, role)
    form = {"key": "seller_settlement_checkpoint", "date": "2026-01-01", "time": "00:00",
            "csrf_token": token(client, "/console/checkpoints/")}  # fmt: skip
    assert client.post("/console/checkpoints/set", data=form).status_code == 403
    assert checkpoints.get_checkpoint("seller_settlement_checkpoint") is None
    assert audit_rows("rerun_from") == []
