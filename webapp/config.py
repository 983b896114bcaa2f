"""Configuration: the only module that reads environment variables.

Names and defaults are the reference connector's (docs/configuration.md) plus ours.
Everything is parsed and validated once, at start-up; a bad value raises ``ConfigError``
with one line naming the variable. Secrets are wrapped in ``Secret`` so that they never
show up in a repr, a log line or an error page.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from webapp.errors import ConfigError

TRUE_WORDS = {"1", "true", "yes", "on"}
APP_SECRET_FILE = "app_secret"  # in the instance folder: the generated key outside production
MIN_APP_SECRET_LENGTH = 32  # characters; the doctor flags a shorter APP_SECRET
FALSE_WORDS = {"0", "false", "no", "off", ""}


class Secret:
    """A secret value whose str() and repr() never reveal it; call ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def _bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _http_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{name} must be an http(s) URL with a host, e.g. https://acme.mirakl.net"
        )
    return value


def _optional_http_url(name: str, raw: str) -> str:
    return _http_url(name, raw) if raw.strip() else ""


def _scheme(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("http", "https"):
        raise ConfigError(f"{name} must be http or https, got {raw!r}")
    return value


def _base_host(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value or "://" in value or " " in value:
        raise ConfigError(f"{name} must be a host name without scheme, e.g. connector.example.com")
    return value


def _stripe_key(name: str, raw: str) -> Secret:
    value = raw.strip()
    if not re.fullmatch(r"(sk|rk)_(test|live)_[A-Za-z0-9_]+", value):
        raise ConfigError(f"{name} must be a Stripe secret key (sk_test_... or sk_live_...)")
    return Secret(value)


def _stripe_mode(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("", "test", "live"):
        raise ConfigError(f"{name} must be test, live or empty, got {raw!r}")
    return value


def _secret(name: str, raw: str) -> Secret:
    return Secret(raw.strip())


def _regex(name: str, raw: str) -> str:
    try:
        re.compile(raw)
    except re.error as exc:
        raise ConfigError(f"{name} must be a regular expression: {exc}") from None
    return raw


def _log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise ConfigError(f"{name} must be text or json, got {raw!r}")
    return value


def _delays(name: str, raw: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated seconds, e.g. 1,5,25") from None
    if any(v < 0 for v in values):
        raise ConfigError(f"{name} must not contain negative delays")
    return values


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Symfony's ``private_ranges`` keyword, accepted in TRUSTED_PROXIES for drop-in compatibility.
PRIVATE_RANGES = (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10",
)  # fmt: skip


def _trusted_proxies(name: str, raw: str) -> int | tuple[IPNetwork, ...]:
    """How many proxies' ``X-Forwarded-*`` headers to believe (``webapp.proxies``).

    Empty: none (the app faces the clients). A whole number: that many proxies always sit
    in front (``1`` on Heroku). ``REMOTE_ADDR`` (the reference's Symfony form): the peer,
    whoever it is, which is one hop. Otherwise the proxies' addresses or networks, comma
    separated (``private_ranges`` for the private ones): believed when the peer is one.
    """
    value = raw.strip()
    if not value:
        return 0
    if value.isdecimal():
        return int(value)
    if value.upper() == "REMOTE_ADDR":
        return 1
    networks: list[IPNetwork] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        addresses = PRIVATE_RANGES if part.lower() == "private_ranges" else (part,)
        try:
            networks.extend(ipaddress.ip_network(a, strict=False) for a in addresses)
        except ValueError:
            raise ConfigError(
                f"{name} must be a number of proxies, REMOTE_ADDR, or IP addresses/networks "
                f"separated by commas, got {part!r}"
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None  # None means required
    parse: Callable[[str, str], Any] = _str
    aliases: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = (
    Setting("APP_ENV", "prod"),
    Setting("APP_SECRET", "", _secret),
    Setting("OPERATOR_PASSWORD", None, _secret),
    Setting("SCHEME", "https", _scheme),
    Setting("BASE_HOST", None, _base_host),
    Setting("TRUSTED_PROXIES", "", _trusted_proxies),
    Setting("MESSENGER_TRANSPORT_DSN", ""),  # accepted for drop-in compatibility, unused
    Setting("REDIS_URL", "redis://localhost:6379/0"),
    Setting("STRIPE_CLIENT_SECRET", None, _stripe_key),
    Setting("STRIPE_API_BASE", "https://api.stripe.com", _http_url),
    Setting("MIRAKL_HOST_NAME", None, _http_url),
    Setting("MIRAKL_API_KEY", None, _secret),
    Setting("ENABLE_SELLER_ONBOARDING", "true", _bool),
    Setting("REDIRECT_ONBOARDING", "", _optional_http_url),
    Setting("STRIPE_SELLERS_WEBHOOK_SECRET", "", _secret, ("STRIPE_WEBHOOK_SECRET",)),
    Setting("STRIPE_OPERATOR_WEBHOOK_SECRET", "", _secret, ("STRIPE_WEBHOOK_SECRET",)),
    Setting("MIRAKL_CUSTOM_FIELD_CODE", "stripe-url"),
    Setting("MIRAKL_IGNORED_SHOP_FIELD_CODE", "stripe-ignored"),
    Setting("STRIPE_PREFILL_ONBOARDING", "false", _bool),
    Setting(
        "PAYMENT_METADATA_COMMERCIAL_ORDER_ID",
        "mirakl_commercial_order_id",
        _str,
        ("MIRAKL_METADATA_ORDER_ID",),
    ),
    Setting(
        "ENABLE_PRODUCT_PAYMENT_SPLIT", "false", _bool, ("ENABLES_AUTOMATIC_TRANSFER_CREATION",)
    ),
    Setting(
        "ENABLE_PRODUCT_PAYMENT_REFUND", "false", _bool, ("ENABLES_AUTOMATIC_REFUND_CREATION",)
    ),
    Setting("ENABLE_SERVICE_PAYMENT_SPLIT", "false", _bool),
    Setting("ENABLE_SERVICE_PAYMENT_REFUND", "false", _bool),
    Setting("ENABLE_PAYMENT_TAX_SPLIT", "false", _bool),
    Setting("STRIPE_TAX_ACCOUNT", ""),
    Setting("KYC_MIRAKL_SHOP_DISABLE_UPDATE", "false", _bool),
    Setting("MAILER_DSN", "smtp://null", _secret),
    Setting("TECHNICAL_ALERT_EMAIL", ""),
    Setting("TECHNICAL_ALERT_EMAIL_FROM", ""),
    Setting("OPERATOR_NOTIFICATION_URL", "", _optional_http_url),
    Setting("MAIL_ON_NOTIFICATION_ENDPOINT_DOWN", "true", _bool),
    Setting("MAIL_ON_NOTIFICATION_ENDPOINT_DOWN_COOLDOWN", "10", _int),
    Setting("CORS_ALLOW_ORIGIN", r"^https?://localhost(:[0-9]+)?$", _regex),
    # Ours, beyond the reference.
    Setting("ENABLE_SERVICE_PAYMENT_VALIDATION", "false", _bool),  # SPA11/SPA01 + capture
    Setting("LOG_FORMAT", "text", _log_format),
    Setting("MIRAKL_TIMEOUT", "30", _float),
    Setting("MIRAKL_MAX_RETRIES", "5", _int),
    Setting("MIRAKL_BACKOFF_BASE", "0.5", _float),
    Setting("STRIPE_TIMEOUT", "30", _float),
    Setting("STRIPE_MAX_NETWORK_RETRIES", "2", _int),
    Setting("STRIPE_MAX_RPS", "", _str),
    Setting("STRIPE_MODE", "", _stripe_mode),  # test or live: what `connector doctor` expects
    Setting("MONEY_JOB_CONCURRENCY", "4", _int),
    Setting("PENDING_RECHECK_AFTER", "600", _int),
    Setting("JOB_LEASE_TTL", "45", _float),
    Setting("RETRY_BACKOFF_BASE", "300", _int),
    Setting("NOTIFICATION_RETRY_DELAYS", "1,5,25", _delays),
    Setting("CONSOLE_SESSION_IDLE_MINUTES", "30", _int),
    Setting("CONSOLE_SESSION_MAX_HOURS", "12", _int),
)

SECRET_NAMES = tuple(s.name for s in SETTINGS if s.parse in (_secret, _stripe_key))


def _raw_value(setting: Setting, env: Mapping[str, str]) -> str | None:
    """The setting's raw value: the first of its name and deprecated aliases that is set.

    An empty value counts as unset when an alias holds one, as in the reference, where
    ``STRIPE_SELLERS_WEBHOOK_SECRET=""`` falls back on ``STRIPE_WEBHOOK_SECRET``.
    """
    present = [env[name] for name in (setting.name, *setting.aliases) if name in env]
    for raw in present:
        if raw.strip():
            return raw
    return present[0] if present else setting.default


def normalize_database_url(raw: str) -> str:
    """Turn the accepted DATABASE_URL forms into a SQLAlchemy URL.

    The reference's Symfony form ``pgsql://u:p@host:5432/db?charset=UTF-8&serverVersion=13``
    carries Doctrine-only query parameters that psycopg rejects, so they are dropped.
    """
    value = raw.strip()
    if value.startswith("sqlite:"):
        return value
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "pgsql", "postgresql+psycopg"):
        query = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k not in ("charset", "serverVersion")
        ]
        return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), ""))
    raise ConfigError(
        "DATABASE_URL must start with postgres://, postgresql://, pgsql:// or sqlite:///"
    )


def stripe_max_rps(raw: str, stripe_key: Secret) -> float:
    """Requests per second allowed to Stripe: below the account's limit for its mode."""
    if raw.strip():
        return _float("STRIPE_MAX_RPS", raw)
    return 80.0 if "_live_" in stripe_key.reveal() else 20.0


def load_config(env: Mapping[str, str], *, instance_path: str) -> dict[str, Any]:
    """Parse and validate the settings in ``env``; return the Flask config mapping.

    Raises:
        ConfigError: naming the first missing or malformed variable.
    """
    cfg: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = _raw_value(setting, env)
        if raw is None or (setting.default is None and not raw.strip()):
            raise ConfigError(f"{setting.name} is required but not set")
        cfg[setting.name] = setting.parse(setting.name, raw)

    default_db = "sqlite:///" + os.path.join(instance_path, "connector.db")
    cfg["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(env.get("DATABASE_URL") or default_db)
    cfg["STRIPE_MAX_RPS"] = stripe_max_rps(cfg["STRIPE_MAX_RPS"], cfg["STRIPE_CLIENT_SECRET"])
    if not cfg["REDIRECT_ONBOARDING"]:
        cfg["REDIRECT_ONBOARDING"] = cfg["MIRAKL_HOST_NAME"] + "/mmp/shop/account/shop"
    # Tax split without STRIPE_TAX_ACCOUNT starts, as in the reference: only the ``_TAX``
    # transfers wait, ON_HOLD "No stripe account ID provided".

    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(cfg["SQLALCHEMY_DATABASE_URI"])
    cfg["PUBLIC_BASE_URL"] = f"{cfg['SCHEME']}://{cfg['BASE_HOST']}"
    cfg["SCHEDULE_OVERRIDES"] = schedule_overrides(env)
    cfg["DEBUG_ENV"] = cfg["APP_ENV"] in ("dev", "test")
    cfg["SECRET_KEY"] = session_key(cfg, instance_path)
    # Console session cookie: never readable by scripts, not sent cross-site, HTTPS-only in prod.
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    cfg["SESSION_COOKIE_SECURE"] = not cfg["DEBUG_ENV"]
    # The same for Flask-Login's "remember me" cookie, should a login ever set one.
    cfg["REMEMBER_COOKIE_HTTPONLY"] = True
    cfg["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    cfg["REMEMBER_COOKIE_SECURE"] = cfg["SESSION_COOKIE_SECURE"]
    return cfg


def session_key(cfg: Mapping[str, Any], instance_path: str) -> str:
    """The key that signs console session cookies: ``APP_SECRET``, never derived from others.

    A key derived from ``OPERATOR_PASSWORD`` and ``STRIPE_CLIENT_SECRET`` would let anyone
    holding those forge console sessions. Outside production (``APP_ENV`` dev or test) a
    missing ``APP_SECRET`` is generated once and kept in the instance folder, so sessions
    survive restarts and are shared by the processes of one checkout.

    Raises:
        ConfigError: ``APP_SECRET`` is missing in production.
    """
    secret = cfg["APP_SECRET"].reveal()
    if secret:
        return secret
    if not cfg["DEBUG_ENV"]:
        raise ConfigError(
            "APP_SECRET is required when APP_ENV is prod: set it to a long random value, "
            "e.g. python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return instance_app_secret(instance_path)


def instance_app_secret(instance_path: str) -> str:
    """The generated key kept in ``<instance>/app_secret`` (created on first use, mode 0600)."""
    path = os.path.join(instance_path, APP_SECRET_FILE)
    try:
        with open(path) as kept:
            secret = kept.read().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    os.makedirs(instance_path, exist_ok=True)
    secret = secrets.token_hex(32)
    # O_EXCL: of two processes starting together, the second reads the first one's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path) as kept:
            return kept.read().strip() or secret
    with os.fdopen(fd, "w") as kept:
        kept.write(secret + "\n")
    return secret


def app_secret_problem(cfg: Mapping[str, Any]) -> str | None:
    """What is wrong with the session key for ``connector doctor``, or None when it is sound."""
    secret = cfg["APP_SECRET"].reveal()
    if not secret:
        if cfg["DEBUG_ENV"]:
            return None  # generated and kept in the instance folder (dev and test only)
        return "APP_SECRET is not set: console sessions cannot be signed in production"
    if secret in (cfg["OPERATOR_PASSWORD"].reveal(), cfg["STRIPE_CLIENT_SECRET"].reveal()):
        return "APP_SECRET must not reuse OPERATOR_PASSWORD or STRIPE_CLIENT_SECRET"
    if len(secret) < MIN_APP_SECRET_LENGTH:
        return (
            f"APP_SECRET is {len(secret)} characters long; use at least "
            f"{MIN_APP_SECRET_LENGTH} random ones (secrets.token_hex(32))"
        )
    return None


def schedule_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """``SCHEDULE_PROCESS_TRANSFER="*/10 * * * *"`` → {"process-transfer": "*/10 * * * *"};
    an empty value disables the job's schedule."""
    overrides = {}
    for name, raw in env.items():
        if not name.startswith("SCHEDULE_"):
            continue
        value = " ".join(raw.split())
        if value and len(value.split(" ")) != 5:
            raise ConfigError(f"{name} must be a 5-field cron expression or empty, got {raw!r}")
        overrides[name[len("SCHEDULE_") :].lower().replace("_", "-")] = value
    return overrides


def engine_options(url: str) -> dict[str, Any]:
    """Engine options per backend: SQLite needs a busy timeout for concurrent writers; a
    server database's pooled connections are checked before use when they have been idle
    (``extensions.ping_idle_connections``), not on every checkout."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {}


def secret_values(cfg: Mapping[str, Any]) -> list[str]:
    """Every secret's clear value, for the log redaction filter."""
    values = [cfg[name].reveal() for name in SECRET_NAMES if cfg.get(name)]
    # Every DSN of MAILER_DSN (failover(…) holds several); a provider DSN such as
    # sendgrid+smtp://KEY@default carries its key as the user name.
    for dsn in re.split(r"[\s()]+", cfg["MAILER_DSN"].reveal()):
        parts = urlsplit(dsn)
        values += [v for v in (parts.username, parts.password) if v and parts.netloc]
    db_password = urlsplit(cfg["SQLALCHEMY_DATABASE_URI"]).password
    if db_password:
        values.append(db_password)
    return [v for v in values if len(v) >= 4]
