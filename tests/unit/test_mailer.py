"""``MAILER_DSN`` parsing: every form the reference (Symfony Mailer 6.4) accepts."""

from __future__ import annotations

import pytest

from webapp.config import load_config, secret_values
from webapp.errors import ConfigError
from webapp.services.notify.mailer import parse_mailer_dsn, parse_transport


@pytest.mark.parametrize("dsn", ["smtp://null", "null://null", "null://default", " null://null "])
def test_null_dsns_disable_mail(dsn):
    assert parse_mailer_dsn(dsn).is_enabled is False


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        # Explicit port: plain, STARTTLS whenever the server offers it.
        (
            "smtp://user:p%40ss@smtp.example.com:587",
            {"host": "smtp.example.com", "port": 587, "implicit_tls": False, "auto_tls": True,
             "username": "user", "password": "p@ss"},
        ),
        ("smtp://127.0.0.1:2525", {"port": 2525, "implicit_tls": False, "username": None}),
        # Port 465: implicit TLS, as Symfony's EsmtpTransport.
        ("smtp://u:p@mail.example.com:465", {"port": 465, "implicit_tls": True}),
        # No port: 465 with TLS, except for localhost (25, STARTTLS when offered).
        ("smtp://mail.example.com", {"port": 465, "implicit_tls": True}),
        ("smtp://localhost", {"port": 25, "implicit_tls": False}),
        ("smtps://u:p@mail.example.com", {"port": 465, "implicit_tls": True}),
        ("smtps://u:p@mail.example.com:2465", {"port": 2465, "implicit_tls": True}),
        # Symfony options.
        ("smtp://h.example.com:25?auto_tls=false", {"auto_tls": False}),
        ("smtp://h.example.com:25?require_tls=true", {"require_tls": True}),
        ("smtp://h.example.com:25?verify_peer=0", {"verify_peer": False}),
        ("smtp://h.example.com:25?local_domain=me.example", {"local_domain": "me.example"}),
        # Our earlier forms still mean STARTTLS, required.
        ("smtp://u:p@mail.example.com:587?encryption=tls", {"require_tls": True}),
        ("smtp://u:p@mail.example.com:587?starttls=1", {"require_tls": True}),
        # Provider bridges.
        (
            "ses+smtp://AKIA:secret@default?region=eu-west-3",
            {"host": "email-smtp.eu-west-3.amazonaws.com", "port": 465, "implicit_tls": True,
             "username": "AKIA", "password": "secret"},
        ),
        ("ses+smtp://AKIA:secret@default", {"host": "email-smtp.eu-west-1.amazonaws.com"}),
        ("gmail+smtp://me:app-pass@default", {"host": "smtp.gmail.com", "port": 465}),
        ("gmail://me:app-pass@default", {"host": "smtp.gmail.com", "implicit_tls": True}),
        (
            "sendgrid+smtp://SG.key@default",
            {"host": "smtp.sendgrid.net", "username": "apikey", "password": "SG.key"},
        ),
        ("mailgun+smtp://u:p@default?region=eu", {"host": "smtp.eu.mailgun.org", "port": 465}),
        ("mailgun+smtp://u:p@default", {"host": "smtp.mailgun.org"}),
        (
            "mandrill+smtp://u:p@default",
            {"host": "smtp.mandrillapp.com", "port": 587, "implicit_tls": False},
        ),
        ("postmark+smtp://TOKEN@default", {"username": "TOKEN", "password": "TOKEN"}),
        ("brevo+smtp://u:p@default", {"host": "smtp-relay.brevo.com", "port": 465}),
    ],
)  # fmt: skip
def test_smtp_dsns(dsn, expected):
    transport = parse_transport(dsn)
    assert transport.kind == "smtp"
    assert {key: getattr(transport, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("dsn", "command"),
    [
        ("sendmail://default", ("/usr/sbin/sendmail", "-bs")),
        ("native://default", ("/usr/sbin/sendmail", "-t", "-i")),
        (
            "sendmail://default?command=/usr/bin/msmtp%20-t",
            ("/usr/bin/msmtp", "-t"),
        ),
    ],
)
def test_sendmail_dsns_use_the_local_binary(dsn, command):
    transport = parse_transport(dsn)
    assert (transport.kind, transport.command) == ("sendmail", command)


@pytest.mark.parametrize("dsn", ["ses+api://k:s@default", "sendgrid://KEY@default", "foo://x"])
def test_http_api_dsns_are_accepted_but_cannot_send(dsn):
    transport = parse_transport(dsn)
    assert transport.kind == "unsupported"
    assert "not supported" in transport.problem


def test_failover_lists_every_transport_in_order():
    settings = parse_mailer_dsn("failover(smtp://a.example.com:25 sendmail://default)")
    assert [t.kind for t in settings.transports] == ["smtp", "sendmail"]
    assert settings.transports[0].host == "a.example.com"
    assert parse_mailer_dsn("roundrobin(null://null smtp://b.example.com:25)").is_enabled


@pytest.mark.parametrize("dsn", ["", "null", "smtp://", "failover()"])
def test_malformed_dsn_is_refused(dsn):
    with pytest.raises(ConfigError, match="MAILER_DSN"):
        parse_mailer_dsn(dsn)


def test_transport_repr_hides_the_password():
    assert "secret" not in repr(parse_transport("smtp://u:secret@h.example.com:25"))


def test_dsn_credentials_are_redacted_from_logs():
    env = {
        "OPERATOR_PASSWORD": "operator-pass",
        "BASE_HOST": "connector.example.com",
        "STRIPE_CLIENT_SECRET": "sk_test_123abc",
        "MIRAKL_HOST_NAME": "https://acme.mirakl.net",
        "MIRAKL_API_KEY": "mirakl-secret-key",
        "MAILER_DSN": "failover(sendgrid+smtp://SG.sendgridkey@default smtp://u:pass1234@h:25)",
        "APP_SECRET": "a-dedicated-app-secret-of-at-least-32-characters",
    }
    values = secret_values(load_config(env, instance_path="/tmp/instance"))
    assert "SG.sendgridkey" in values and "pass1234" in values
