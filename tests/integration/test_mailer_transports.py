"""``MAILER_DSN`` transports against real servers: the SMTP sink, SMTP sinks speaking
STARTTLS and implicit TLS with a certificate made here, and a sendmail script."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import logging
import os
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webapp.services.notify import mailer

ALERTS = {"TECHNICAL_ALERT_EMAIL": "ops@example.com", "TECHNICAL_ALERT_EMAIL_FROM": "c@example.com"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@dataclass
class Received:
    message: Any
    tls: bool
    login: Any


@dataclass
class TlsSink:
    port: int
    received: list[Received] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tls_sink(certificate) -> Iterator[Any]:
    """Start an SMTP sink: ``tls_sink(implicit=False, users={...})``."""
    controllers: list[Controller] = []

    def start(*, implicit: bool = False, users: dict[str, str] | None = None) -> TlsSink:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        sink = TlsSink(_free_port())

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                tls = server.transport.get_extra_info("ssl_object") is not None
                sink.received.append(Received(message, tls, session.auth_data))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            is_known = (users or {}).get(login) == password
            return AuthResult(success=is_known, auth_data=login if is_known else None)

        kwargs: dict[str, Any] = {"ssl_context": context} if implicit else {"tls_context": context}
        if users is not None:
            kwargs.update(authenticator=authenticator, auth_required=True)
        controller = Controller(
            Handler(), hostname="127.0.0.1", port=sink.port, server_hostname="127.0.0.1", **kwargs
        )
        controller.start()
        controllers.append(controller)
        return sink

    yield start
    for controller in controllers:
        controller.stop()


def send(make_app, dsn: str) -> bool:
    app = make_app(MAILER_DSN=dsn, **ALERTS)
    with app.app_context():
        return mailer.send_mail("[Stripe-Mirakl] test", "body text", "<p>body</p>")


def test_plain_smtp_sink_receives_the_mail(make_app, smtp):
    assert send(make_app, smtp.dsn) is True
    (message,) = smtp.messages
    assert message["Subject"] == "[Stripe-Mirakl] test"
    assert message["X-Envelope-To"] == "ops@example.com"
    assert message["From"] == "c@example.com"


def test_starttls_is_used_automatically_when_offered(make_app, tls_sink):
    sink = tls_sink()
    assert send(make_app, f"smtp://127.0.0.1:{sink.port}?verify_peer=0") is True
    assert [r.tls for r in sink.received] == [True]


def test_starttls_then_login_with_the_dsn_credentials(make_app, tls_sink):
    sink = tls_sink(users={"alerts": "p@ss word"})
    dsn = f"smtp://alerts:p%40ss%20word@127.0.0.1:{sink.port}?verify_peer=false"
    assert send(make_app, dsn) is True
    assert [(r.tls, r.login) for r in sink.received] == [(True, "alerts")]


def test_wrong_password_is_not_sent(make_app, tls_sink, caplog):
    sink = tls_sink(users={"alerts": "right"})
    caplog.set_level(logging.ERROR, logger="webapp.services.mailer")
    assert send(make_app, f"smtp://alerts:wrong@127.0.0.1:{sink.port}?verify_peer=0") is False
    assert sink.received == []
    assert "wrong" not in caplog.text


def test_auto_tls_off_sends_in_clear(make_app, tls_sink):
    sink = tls_sink()
    assert send(make_app, f"smtp://127.0.0.1:{sink.port}?auto_tls=false") is True
    assert [r.tls for r in sink.received] == [False]


def test_require_tls_refuses_a_server_without_starttls(make_app, smtp):
    assert send(make_app, smtp.dsn + "?require_tls=true") is False
    assert smtp.messages == []


def test_the_certificate_is_verified_unless_told_otherwise(make_app, tls_sink, caplog):
    sink = tls_sink()
    caplog.set_level(logging.ERROR, logger="webapp.services.mailer")
    assert send(make_app, f"smtp://127.0.0.1:{sink.port}") is False
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert sink.received == []


def test_smtps_is_implicit_tls(make_app, tls_sink):
    sink = tls_sink(implicit=True)
    assert send(make_app, f"smtps://127.0.0.1:{sink.port}?verify_peer=0") is True
    assert [r.tls for r in sink.received] == [True]


def test_failover_sends_through_the_next_transport(make_app, smtp):
    dead = _free_port()
    assert send(make_app, f"failover(smtp://127.0.0.1:{dead} {smtp.dsn})") is True
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("dsn", ["null://null", "smtp://null"])
def test_null_transport_sends_nothing(make_app, smtp, dsn):
    assert send(make_app, dsn) is False
    assert smtp.messages == []


def _fake_sendmail(folder: Path) -> Path:
    """A sendmail stand-in: keeps its arguments and the message it was given."""
    script = folder / "sendmail"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\ncat > "$0.out"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("flags", ["-bs", "-t%20-i"])
def test_sendmail_transport_pipes_the_message_to_the_binary(make_app, tmp_path, flags):
    script = _fake_sendmail(tmp_path)
    assert send(make_app, f"sendmail://default?command={script}%20{flags}") is True
    args = Path(f"{script}.args").read_text().split()
    assert args == ["-t", "-i", "-f", "c@example.com"]
    message = email.message_from_bytes(Path(f"{script}.out").read_bytes())
    assert message["Subject"] == "[Stripe-Mirakl] test"
    assert message["To"] == "ops@example.com"


def test_missing_sendmail_starts_and_fails_only_when_sending(make_app, caplog):
    missing = "/nonexistent/sendmail"
    assert not os.path.exists(missing)
    caplog.set_level(logging.WARNING, logger="webapp.services.mailer")
    app = make_app(MAILER_DSN=f"sendmail://default?command={missing}%20-bs", **ALERTS)
    assert "is not installed" in caplog.text
    with app.app_context():
        assert mailer.send_mail("[Stripe-Mirakl] test", "body") is False
    assert f"sendmail binary {missing} not found" in caplog.text


@pytest.mark.parametrize(
    "dsn", ["native://default", "ses+api://k:s@default", "gmail://u:p@default"]
)
def test_every_reference_dsn_form_starts_the_app(make_app, dsn):
    app = make_app(MAILER_DSN=dsn, **ALERTS)
    assert app.config["MAIL_ENABLED"] is True
