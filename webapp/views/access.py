"""Console users (admins manage them) and the audit trail (everyone reads it, nobody edits it).

``init_app`` also records logins and failed logins in the audit trail, from Flask-Login's
``user_logged_in`` signal and from the login page's 401 answer, so ``views/auth`` stays as
it is.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user, user_logged_in

from webapp.extensions import db
from webapp.services.access import audit, users
from webapp.services.access.roles import MANAGE_USERS, ROLES, SET_CHECKPOINTS
from webapp.services.rerun import store
from webapp.services.rerun.rules import get_dated_job, parse_start
from webapp.views.auth import SecuredMixin

log = logging.getLogger(__name__)


class AdminOnlyMixin(SecuredMixin):
    """Pages for admins: other logged-in users get 403 (not the login page again)."""

    post_permission = MANAGE_USERS

    def is_accessible(self) -> bool:
        return super().is_accessible() and self.allows(self.post_permission)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if current_user.is_authenticated:
            abort(403)
        return super().inaccessible_callback(name, **kwargs)


class UsersView(AdminOnlyMixin, BaseView):
    """Invite, disable, enable, reset the password of and change the role of console users."""

    @expose("/")
    def index(self) -> str:
        return self.render("admin/users/index.html", users=users.list_users(), roles=ROLES)

    def _shown_once(self, email: str, password: str) -> str:
        # Rendered in this answer only: a flash would put the password in the session cookie.
        return self.render(
            "admin/users/index.html", users=users.list_users(), roles=ROLES,
            new_password={"email": email, "password": password},
        )  # fmt: skip

    @expose("/invite", methods=["POST"])
    def invite(self) -> Any:
        try:
            user, password = users.invite_user(
                request.form.get("email", ""), request.form.get("role", ""),
                actor=current_user.email,
            )  # fmt: skip
        except ValueError as exc:
            db.session.rollback()
            flash(f"Nobody was invited: {exc}.", "error")
            return redirect(url_for(".index"))
        flash(f"{user.email} invited as {user.role}.", "success")
        return self._shown_once(user.email, password)

    @expose("/<int:user_id>/<change>", methods=["POST"])
    def change(self, user_id: int, change: str) -> Any:
        actor = current_user.email
        try:
            if change == "reset":
                user, password = users.reset_password(user_id, actor=actor)
                flash(f"{user.email} has a new password.", "success")
                return self._shown_once(user.email, password)
            if change == "disable":
                user = users.disable_user(user_id, actor=actor)
            elif change == "enable":
                user = users.enable_user(user_id, actor=actor)
            elif change == "role":
                user = users.set_role(user_id, request.form.get("role", ""), actor=actor)
            else:
                abort(404, f"There is no change named {change!r}.")
        except LookupError as exc:
            abort(404, str(exc))
        except ValueError as exc:
            db.session.rollback()
            flash(f"Nothing changed: {exc}.", "error")
            return redirect(url_for(".index"))
        flash(f"{user.email}: {change} done.", "success")
        return redirect(url_for(".index"))


def _record_login(sender: Flask, user: Any, **extra: Any) -> None:
    audit.record_now("login", actor=user.email, target_type="user", target_id=user.id,
                     mirakl_id=user.email, outcome="logged in")  # fmt: skip


def _record_failed_login(response: Response) -> Response:
    if request.endpoint == "auth.login" and request.method == "POST":
        if response.status_code == 401:
            email = (request.form.get("email") or "").strip().lower().replace("\x00", "")
            audit.record_now("login_failed", actor=email[:255] or "unknown",
                             target_type="user", mirakl_id=email,
                             outcome="refused")  # fmt: skip
    return response


def init_app(app: Flask) -> None:
    """Record logins and failed logins in the audit trail."""
    user_logged_in.connect(_record_login, app)
    app.after_request(_record_failed_login)


class CheckpointsView(SecuredMixin, BaseView):
    """Rerun from a date: everyone sees the checkpoints, only an admin moves one."""

    post_permission = SET_CHECKPOINTS

    @expose("/")
    def index(self) -> str:
        return self.render("admin/users/checkpoints.html", rows=store.list_checkpoints())

    @expose("/set", methods=["POST"])
    def set(self) -> Any:
        key = request.form.get("key", "")
        try:
            start = parse_start(request.form.get("date", ""), request.form.get("time", ""))
            value = store.rerun_from(key, start, actor=current_user.email,
                                     reason=request.form.get("reason") or None)  # fmt: skip
        except ValueError as exc:
            db.session.rollback()
            flash(f"Nothing changed: {exc}.", "error")
            return redirect(url_for(".index"))
        job = get_dated_job(key).job
        flash(f"The next {job} run reads from {value}.", "success")
        return redirect(url_for(".index"))
