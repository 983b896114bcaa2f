"""Console login and logout (Flask-Login), CSRF on every form (Flask-WTF), login throttling.

Sessions are held server-side (``services/console_security/sessions.py``): logout, a password
change, a disabled user and the idle and absolute timeouts end them. Failed logins are
throttled per account and client IP, per client IP and per account
(``services/console_security/throttle.py``); every refusal shows the same message and takes
the same time, so the page never tells whether an e-mail address has an account. Machine
endpoints (``public``, ``api``, ``health``) are authenticated otherwise and exempt from CSRF.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import OperatorUser
from webapp.services.access.roles import ACT, can
from webapp.services.access.users import find_user
from webapp.services.console_security import sessions, throttle

log = logging.getLogger(__name__)

SESSION_HANDLE_KEY = "console_session"  # in the signed cookie: the server-side session's handle
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
    """The user of this request's server-side session, checked on every request.

    The signed cookie alone is not enough: its session handle must name a live
    ``console_session`` row of the same user (not logged out, not timed out, password
    unchanged) whose account is not disabled.
    """
    user = sessions.find_session_user(session.get(SESSION_HANDLE_KEY), **_session_timeouts())
    if user is None or str(user.id) != user_id or not user.is_active:
        return None
    return user


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the e-mail is unknown, so both cases take the same time (made on
    first use: hashing costs tens of milliseconds at every start otherwise)."""
    return generate_password_hash("not-a-real-password")


def authenticate(email: str, password: str, ip: str = "unknown") -> OperatorUser | None:
    """The user if the password is right and no throttle applies; counts failures.

    Every refusal does the same work: the password is checked against a hash (the dummy
    one for an unknown e-mail) even when the login is throttled, so the answer's time
    tells neither whether the account exists nor whether it is locked
    (``throttle`` holds the lockout policy).
    """
    user = find_user(email)
    is_right = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    now = utcnow()
    if throttle.is_throttled(email, ip, user, now):
        return None
    if user is None or not is_right:
        throttle.record_failure(email, ip, user, now)
        return None
    throttle.record_success(email, ip, user, now)
    db.session.refresh(user)
    return user


def request_client_ip() -> str:
    """This request's client address, through the proxies ``TRUSTED_PROXIES`` names."""
    # ProxyFix (webapp/proxies.py) has already put the client's address there when
    # TRUSTED_PROXIES names the proxy it came through; a client cannot set it itself.
    return request.remote_addr or "unknown"


def _session_timeouts() -> dict[str, timedelta]:
    config = current_app.config
    return {
        "idle": timedelta(minutes=config["CONSOLE_SESSION_IDLE_MINUTES"]),
        "lifetime": timedelta(hours=config["CONSOLE_SESSION_MAX_HOURS"]),
    }


def start_console_session(user: OperatorUser) -> None:
    """Log ``user`` in: a server-side session whose handle the signed cookie carries."""
    sessions.purge_expired_sessions(**_session_timeouts())
    handle = sessions.start_session(user)
    login_user(user)
    session[SESSION_HANDLE_KEY] = handle


def end_console_session() -> None:
    """Log out: the server-side session is deleted, so a saved cookie opens nothing."""
    sessions.end_session(session.pop(SESSION_HANDLE_KEY, None))
    logout_user()


class SecuredMixin:
    """For console views: only logged-in operators; everyone else goes to the login page.

    Every POST to a console view needs the view's ``post_permission`` (by default "act":
    operator or admin), checked here on the server for every view, not only hidden in pages.
    """

    post_permission = ACT

    def is_accessible(self) -> bool:
        return current_user.is_authenticated

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        # script_root: the mount prefix a proxy announced (X-Forwarded-Prefix), part of the path.
        return redirect(
            url_for("auth.login", next=request.script_root + request.full_path.rstrip("?"))
        )

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        answer = super()._handle_view(name, **kwargs)  # type: ignore[misc]
        if answer is None and request.method == "POST" and not self.allows(self.post_permission):
            log.warning("console user %s (%s): %s refused", current_user.id, current_user.role,
                        name)  # fmt: skip
            abort(403)
        return answer

    def allows(self, permission: str) -> bool:
        """Whether the logged-in user's role allows ``permission`` (templates ask this)."""
        return current_user.is_authenticated and can(current_user.role, permission)


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
        user = authenticate(form.email.data, form.password.data, request_client_ip())
        if user is not None and user.is_active:
            start_console_session(user)
            log.info("operator %s: logged in", user.id)
            return redirect(_safe_next(request.args.get("next")))
        flash(REFUSED, "error")
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" else 401


@bp.post("/logout")
@login_required
def logout():
    end_console_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
