"""Console login and logout (Flask-Login), CSRF on every form (Flask-WTF), login throttling.

After ``MAX_FAILED_LOGINS`` wrong passwords in a row an account is locked for
``LOCK_DURATION``; every refusal shows the same message, so the page never tells whether an
e-mail address has an account. Machine endpoints (``public``, ``api``, ``health``) are
authenticated otherwise and exempt from CSRF.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import OperatorUser

log = logging.getLogger(__name__)

MAX_FAILED_LOGINS = 5  # wrong passwords in a row before the account is locked
LOCK_DURATION = timedelta(minutes=5)
REFUSED = (
    "Wrong e-mail or password, or too many attempts: check them and try again in a few minutes."
)

bp = Blueprint("auth", __name__, url_prefix="/console")
login_manager = LoginManager()
csrf = CSRFProtect()


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def init_app(app: Flask) -> None:
    """Bind Flask-Login and CSRF protection to the app; exempt the machine endpoints."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to use the console."
    login_manager.session_protection = "strong"
    csrf.init_app(app)


@login_manager.user_loader
def load_user(user_id: str) -> OperatorUser | None:
    try:
        return db.session.get(OperatorUser, int(user_id))
    except ValueError:
        return None


def find_user(email: str) -> OperatorUser | None:
    """The console user with this e-mail (case-insensitive), or None."""
    if "\x00" in email:  # no address holds NUL, and PostgreSQL refuses to compare one
        return None
    return db.session.execute(
        select(OperatorUser).where(func.lower(OperatorUser.email) == email.strip().lower())
    ).scalar_one_or_none()


def create_user(email: str, password: str) -> OperatorUser:
    """Add a console user with a hashed password (committed).

    Raises:
        ValueError: the e-mail already has an account.
    """
    if find_user(email) is not None:
        raise ValueError(f"{email} already has an account")
    user = OperatorUser(email=email.strip().lower(), password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the e-mail is unknown, so both cases take the same time (made on
    first use: hashing costs tens of milliseconds at every start otherwise)."""
    return generate_password_hash("not-a-real-password")


def authenticate(email: str, password: str) -> OperatorUser | None:
    """The user if the password is right and the account not locked; counts failures."""
    user = find_user(email)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        return None
    if not check_password_hash(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCK_DURATION
            user.failed_logins = 0
            log.warning("operator %s: locked for %s after failed logins", user.id, LOCK_DURATION)
        db.session.commit()
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return user


class SecuredMixin:
    """For console views: only logged-in operators; everyone else goes to the login page."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/"):
            return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            log.info("operator %s: logged in", user.id)
            return redirect(_safe_next(request.args.get("next")))
        flash(REFUSED, "error")
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" else 401


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
