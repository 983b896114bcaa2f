"""E-mail to the technical address, configured from ``MAILER_DSN`` like Symfony Mailer.

Accepted DSNs (the reference's, Symfony Mailer 6.4):

- ``smtp://null`` (the default) and ``null://null``: e-mail disabled.
- ``smtp://user:pass@host:port``: port 465 means implicit TLS; no port means 465 with TLS
  unless the host is ``localhost`` (then 25); otherwise STARTTLS is used whenever the server
  offers it (``?auto_tls=false`` turns that off, ``?require_tls=true`` refuses to send
  without TLS, ``?verify_peer=false`` accepts any certificate). ``smtps://`` is implicit TLS.
- ``sendmail://default`` and ``native://default``: the local ``sendmail`` binary
  (``?command=`` overrides it); a missing binary is an error when sending, not at start-up.
- Provider SMTP DSNs (``ses+smtp://``, ``gmail+smtp://``, ``sendgrid+smtp://`` …): the
  provider's SMTP host and port, as Symfony's bridges use them.
- ``failover(dsn1 dsn2)`` and ``roundrobin(dsn1 dsn2)``: each tried in turn until one sends.

Provider HTTP APIs (``ses+api://``, ``sendgrid://`` …) are not supported: start-up logs a
warning and every e-mail is reported as not sent. A failure to send is logged and reported
as False; it never breaks the job that wanted to send.
"""

from __future__ import annotations

import logging
import os
import shlex
import smtplib
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Flask, current_app

from webapp.errors import ConfigError

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds per SMTP connection or sendmail run
DEFAULT_SENDMAIL = "/usr/sbin/sendmail -bs"  # Symfony's SendmailTransport default
NATIVE_SENDMAIL = "/usr/sbin/sendmail -t -i"  # PHP's default sendmail_path
TRUE_WORDS = {"1", "true", "yes", "on"}

# Symfony's provider bridges: scheme → (host, port, implicit TLS). ``{region}`` is filled
# from ``?region=``. Ports 587 use STARTTLS.
PROVIDER_SMTP: dict[str, tuple[str, int, bool]] = {
    "ses": ("email-smtp.{region}.amazonaws.com", 465, True),
    "gmail": ("smtp.gmail.com", 465, True),
    "mailgun": ("smtp.mailgun.org", 465, True),
    "sendgrid": ("smtp.sendgrid.net", 465, True),
    "mandrill": ("smtp.mandrillapp.com", 587, False),
    "postmark": ("smtp.postmarkapp.com", 587, False),
    "mailjet": ("in-v3.mailjet.com", 587, False),
    "brevo": ("smtp-relay.brevo.com", 465, True),
    "sendinblue": ("smtp-relay.sendinblue.com", 465, True),
    "mailpace": ("smtp.mailpace.com", 587, False),
    "ohmysmtp": ("smtp.ohmysmtp.com", 587, False),
    "scaleway": ("smtp.tem.scw.cloud", 465, True),
    "mailersend": ("smtp.mailersend.net", 587, False),
    "infobip": ("smtp-api.infobip.com", 587, False),
    "mailtrap": ("live.smtp.mailtrap.io", 587, False),
}
SMTP_ONLY_PROVIDERS = {"gmail"}  # ``gmail://`` is SMTP too: Gmail has no API bridge


@dataclass(frozen=True)
class Transport:
    """One way of sending: ``kind`` is ``smtp``, ``sendmail`` or ``unsupported``."""

    kind: str
    host: str = ""
    port: int = 0
    implicit_tls: bool = False
    auto_tls: bool = True
    require_tls: bool = False
    verify_peer: bool = True
    local_domain: str | None = None
    username: str | None = None
    password: str | None = None
    command: tuple[str, ...] = ()
    problem: str = ""

    def __repr__(self) -> str:  # never show the password
        where = f"{self.host}:{self.port}" if self.kind == "smtp" else " ".join(self.command)
        return f"Transport({self.kind} {where})"


@dataclass(frozen=True)
class MailerSettings:
    """The transports of ``MAILER_DSN``, tried in order; none means e-mail is disabled."""

    transports: tuple[Transport, ...] = ()

    @property
    def is_enabled(self) -> bool:
        return bool(self.transports)


DISABLED = MailerSettings()


def _options(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def _flag(options: dict[str, str], name: str, default: bool) -> bool:
    raw = options.get(name)
    return default if raw is None or raw == "" else raw.strip().lower() in TRUE_WORDS


def _smtp(
    host: str, port: int, tls: bool | None, user: str | None, password: str | None, opts: dict
) -> Transport:
    """Symfony's EsmtpTransport rules for TLS and the default port."""
    if tls is None:
        tls = port == 465 or (port == 0 and host != "localhost")
    # Our earlier forms ``?encryption=tls`` / ``?starttls=1`` mean "STARTTLS, required".
    legacy_starttls = opts.get("encryption", "").lower() == "tls" or _flag(opts, "starttls", False)
    return Transport(
        "smtp",
        host=host,
        port=port or (465 if tls else 25),
        implicit_tls=tls,
        auto_tls=_flag(opts, "auto_tls", True),
        require_tls=_flag(opts, "require_tls", False) or legacy_starttls,
        verify_peer=_flag(opts, "verify_peer", True),
        local_domain=opts.get("local_domain") or None,
        username=user,
        password=password,
    )


def _provider(name: str, user: str | None, password: str | None, opts: dict) -> Transport:
    host, port, tls = PROVIDER_SMTP[name]
    if name == "ses":
        host = host.format(region=opts.get("region") or "eu-west-1")
    elif name == "mailgun" and (opts.get("region") or "us") != "us":
        host = f"smtp.{opts['region']}.mailgun.org"
    if name == "sendgrid":  # the DSN holds only the API key
        user, password = "apikey", password or user
    elif name == "postmark":  # the server token is both user name and password
        password = password or user
    return _smtp(host, port, tls, user, password, opts)


def parse_transport(dsn: str) -> Transport | None:
    """One DSN as a transport; None when it disables e-mail.

    Raises:
        ConfigError: not a DSN at all.
    """
    parts = urlsplit(dsn.strip())
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise ConfigError("MAILER_DSN must look like smtp://user:pass@host:port or null://null")
    host = (parts.hostname or "").lower()
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    opts = _options(parts.query)
    if scheme == "null" or (scheme == "smtp" and host == "null"):
        return None
    if scheme in ("smtp", "smtps"):
        return _smtp(
            host, parts.port or 0, True if scheme == "smtps" else None, user, password, opts
        )
    if scheme in ("sendmail", "sendmail+smtp", "native"):
        default = NATIVE_SENDMAIL if scheme == "native" else DEFAULT_SENDMAIL
        return Transport("sendmail", command=tuple(shlex.split(opts.get("command") or default)))
    provider, _, flavour = scheme.partition("+")
    if provider in PROVIDER_SMTP and (
        flavour in ("smtp", "smtps") or (not flavour and provider in SMTP_ONLY_PROVIDERS)
    ):
        return _provider(provider, user, password, opts)
    return Transport(
        "unsupported",
        problem=f"MAILER_DSN scheme {scheme}:// is not supported; use its SMTP form "
        f"({provider}+smtp://) or smtp://",
    )


def parse_mailer_dsn(dsn: str) -> MailerSettings:
    """``MAILER_DSN`` as the transports to try, in order (``failover(…)``/``roundrobin(…)``
    list several, separated by spaces).

    Raises:
        ConfigError: a DSN that is not one at all.
    """
    value = dsn.strip()
    for wrapper in ("failover(", "roundrobin("):
        if value.lower().startswith(wrapper) and value.endswith(")"):
            inner = value[len(wrapper) : -1].split()
            if not inner:
                raise ConfigError(f"MAILER_DSN {wrapper}…) lists no DSN")
            found = [parse_transport(part) for part in inner]
            return MailerSettings(tuple(t for t in found if t is not None))
    transport = parse_transport(value)
    return MailerSettings((transport,)) if transport else DISABLED


def init_app(app: Flask) -> None:
    """Parse ``MAILER_DSN`` once; warn about transports that cannot send."""
    settings = parse_mailer_dsn(app.config["MAILER_DSN"].reveal())
    for transport in settings.transports:
        if transport.kind == "unsupported":
            log.warning("mailer: %s; e-mails will not be sent", transport.problem)
        elif transport.kind == "sendmail" and not _is_executable(transport.command[0]):
            log.warning("mailer: %s is not installed; e-mails will fail", transport.command[0])
    app.config["MAILER"] = settings
    app.config["MAIL_ENABLED"] = settings.is_enabled


def is_enabled() -> bool:
    cfg = current_app.config
    return bool(cfg["MAIL_ENABLED"] and cfg["TECHNICAL_ALERT_EMAIL"])


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def build_message(
    subject: str, text: str, html: str | None, sender: str, to: Sequence[str]
) -> EmailMessage:
    """A text e-mail, with an HTML alternative when given."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def _tls_context(transport: Transport) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not transport.verify_peer:  # the operator's explicit ?verify_peer=false
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _open_smtp(transport: Transport) -> smtplib.SMTP:
    """A connected, greeted (and logged-in) SMTP session: implicit TLS, or STARTTLS when
    offered (Symfony's auto_tls). The caller closes it."""
    context = _tls_context(transport)
    local = transport.local_domain
    if transport.implicit_tls:
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            transport.host, transport.port, local_hostname=local, timeout=TIMEOUT, context=context
        )
    else:
        server = smtplib.SMTP(transport.host, transport.port, local_hostname=local, timeout=TIMEOUT)
    try:
        server.ehlo()
        is_tls = transport.implicit_tls
        if not is_tls and transport.auto_tls and server.has_extn("starttls"):
            server.starttls(context=context)
            server.ehlo()
            is_tls = True
        if transport.require_tls and not is_tls:
            raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
        if transport.username:
            server.login(transport.username, transport.password or "")
    except BaseException:
        server.close()
        raise
    return server


def _send_smtp(transport: Transport, message: EmailMessage) -> None:
    with _open_smtp(transport) as server:
        server.send_message(message)


def describe_transport(transport: Transport) -> str:
    """Where a transport sends, for messages: ``host:port`` or the sendmail command."""
    return (
        f"{transport.host}:{transport.port}" if transport.kind == "smtp" else transport.command[0]
    )


def check_transport(transport: Transport) -> None:
    """Reach the transport as a send would (connect, TLS, login), sending nothing.

    Raises:
        OSError, smtplib.SMTPException, ssl.SSLError: it cannot be reached; for sendmail,
        FileNotFoundError when the binary is missing.
    """
    if transport.kind == "smtp":
        with _open_smtp(transport):
            return
    if transport.kind == "sendmail":
        if not _is_executable(transport.command[0]):
            raise FileNotFoundError(f"sendmail binary {transport.command[0]} not found")
        return
    raise NotImplementedError(transport.problem)


def _send_sendmail(transport: Transport, message: EmailMessage, sender: str) -> None:
    """Pipe the message to the local sendmail; ``-bs`` (SMTP on stdin) becomes ``-t -i``."""
    binary, *args = transport.command
    if not _is_executable(binary):
        raise FileNotFoundError(f"sendmail binary {binary} not found")
    args = [a for a in args if a != "-bs"]
    if "-t" not in args:
        args += ["-t", "-i"]
    done = subprocess.run(  # noqa: S603 - the operator's own sendmail command
        [binary, *args, "-f", sender],
        input=message.as_bytes(),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[:200]
        raise OSError(f"{binary} exited with {done.returncode}: {detail}")


def _deliver(transport: Transport, message: EmailMessage, sender: str) -> None:
    if transport.kind == "smtp":
        _send_smtp(transport, message)
    elif transport.kind == "sendmail":
        _send_sendmail(transport, message, sender)
    else:
        raise NotImplementedError(transport.problem)


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
    settings: MailerSettings = cfg["MAILER"]
    if not settings.is_enabled or not to:
        log.info("mail %r: not sent (mail disabled or no recipient)", subject)
        return False
    sender = cfg["TECHNICAL_ALERT_EMAIL_FROM"] or to[0]
    message = build_message(subject, text, html, sender, to)
    for transport in settings.transports:
        try:
            _deliver(transport, message, sender)
        except Exception as exc:  # noqa: BLE001 - mail must never break the job that sends it
            # The exception text names hosts and files, never the DSN's password.
            log.error(
                "mail %r: could not be sent by %r: %s: %s",
                subject,
                transport,
                type(exc).__name__,
                exc,
            )
            continue
        return True
    return False
