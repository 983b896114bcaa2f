"""E-mail through Flask-Mail, configured from ``MAILER_DSN`` (``smtp://null`` disables it).

DSN forms: ``smtp://user:pass@host:port``, ``smtps://…`` (implicit TLS), and
``smtp://…?encryption=tls`` or ``?starttls=1`` for STARTTLS. A failure to send is logged and
reported as False; it never breaks the job that wanted to send.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Flask, current_app
from flask_mail import Mail, Message

from webapp.errors import ConfigError

log = logging.getLogger(__name__)

mail = Mail()


def mail_settings(dsn: str) -> dict[str, object]:
    """Flask-Mail settings for a mailer DSN; ``MAIL_SUPPRESS_SEND`` when disabled."""
    parts = urlsplit(dsn.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("MAILER_DSN must look like smtp://user:pass@host:port or smtp://null")
    if parts.hostname == "null":
        return {"MAIL_SUPPRESS_SEND": True, "MAIL_SERVER": "localhost", "MAIL_ENABLED": False}
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    use_ssl = parts.scheme == "smtps"
    use_tls = query.get("encryption") == "tls" or query.get("starttls") in ("1", "true")
    return {
        "MAIL_SERVER": parts.hostname,
        "MAIL_PORT": parts.port or (465 if use_ssl else 25),
        "MAIL_USERNAME": unquote(parts.username) if parts.username else None,
        "MAIL_PASSWORD": unquote(parts.password) if parts.password else None,
        "MAIL_USE_SSL": use_ssl,
        "MAIL_USE_TLS": use_tls,
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_ENABLED": True,
        "MAIL_TIMEOUT": 10,
    }


def init_app(app: Flask) -> None:
    """Bind Flask-Mail to the app with the settings from ``MAILER_DSN``."""
    app.config.update(mail_settings(app.config["MAILER_DSN"].reveal()))
    mail.init_app(app)


def is_enabled() -> bool:
    cfg = current_app.config
    return bool(cfg["MAIL_ENABLED"] and cfg["TECHNICAL_ALERT_EMAIL"])


def send_mail(
    subject: str,
    text: str,
    html: str | None = None,
    recipients: Sequence[str] | None = None,
) -> bool:
    """Send one e-mail to ``TECHNICAL_ALERT_EMAIL`` (or ``recipients``); True when sent."""
    cfg = current_app.config
    to = (
        list(recipients)
        if recipients
        else [a.strip() for a in cfg["TECHNICAL_ALERT_EMAIL"].split(",") if a.strip()]
    )
    if not cfg["MAIL_ENABLED"] or not to:
        log.info("mail %r: not sent (mail disabled or no recipient)", subject)
        return False
    sender = cfg["TECHNICAL_ALERT_EMAIL_FROM"] or to[0]
    try:
        mail.send(Message(subject=subject, recipients=to, body=text, html=html, sender=sender))
    except Exception as exc:  # noqa: BLE001 - mail must never break the job that sends it
        log.error("mail %r: could not be sent: %s", subject, type(exc).__name__)
        return False
    return True
