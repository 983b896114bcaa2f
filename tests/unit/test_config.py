from __future__ import annotations

import pytest

from webapp.config import (
    Secret,
    app_secret_problem,
    load_config,
    normalize_database_url,
    secret_values,
)
from webapp.errors import ConfigError

REQUIRED = {
    "APP_SECRET": "a-dedicated-random-session-key-0123456789",
    "OPERATOR_PASSWORD": "operator-pass",
    "BASE_HOST": "connector.example.com",
    "STRIPE_CLIENT_SECRET": "sk_test_123abc",
    "MIRAKL_HOST_NAME": "https://acme.mirakl.net",
    "MIRAKL_API_KEY": "mirakl-secret-key",
}


def load(**env: str) -> dict:
    return load_config({**REQUIRED, **env}, instance_path="/tmp/instance")


def test_reference_defaults():
    cfg = load()
    assert cfg["SCHEME"] == "https"
    assert cfg["ENABLE_SELLER_ONBOARDING"] is True
    assert cfg["ENABLE_PRODUCT_PAYMENT_SPLIT"] is False
    assert cfg["MIRAKL_CUSTOM_FIELD_CODE"] == "stripe-url"
    assert cfg["MIRAKL_IGNORED_SHOP_FIELD_CODE"] == "stripe-ignored"
    assert cfg["PAYMENT_METADATA_COMMERCIAL_ORDER_ID"] == "mirakl_commercial_order_id"
    assert cfg["REDIRECT_ONBOARDING"] == "https://acme.mirakl.net/mmp/shop/account/shop"
    assert cfg["MAIL_ON_NOTIFICATION_ENDPOINT_DOWN_COOLDOWN"] == 10
    assert cfg["STRIPE_API_BASE"] == "https://api.stripe.com"
    assert cfg["REDIS_URL"] == "redis://localhost:6379/0"
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "sqlite:////tmp/instance/connector.db"
    assert cfg["STRIPE_MAX_RPS"] == 20.0  # test key: below Stripe's 25/s test-mode limit
    assert load(STRIPE_CLIENT_SECRET="sk_live_x1")["STRIPE_MAX_RPS"] == 80.0


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_required_names_the_variable(name):
    env = {k: v for k, v in REQUIRED.items() if k != name}
    with pytest.raises(ConfigError, match=f"^{name} is required"):
        load_config(env, instance_path="/tmp/i")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENABLE_PRODUCT_PAYMENT_SPLIT", "maybe", "must be true or false"),
        ("MIRAKL_HOST_NAME", "acme.mirakl.net", "must be an http"),
        ("BASE_HOST", "https://x.com", "without scheme"),
        ("STRIPE_CLIENT_SECRET", "pk_test_1", "Stripe secret key"),
        ("MAIL_ON_NOTIFICATION_ENDPOINT_DOWN_COOLDOWN", "ten", "whole number"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must start"),
        ("SCHEME", "ftp", "http or https"),
    ],
)
def test_malformed_values_are_refused_with_one_line(name, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(**{name: value})
    assert "\n" not in str(info.value)
    assert name in str(info.value)


def test_deprecated_aliases_are_honoured():
    cfg = load(
        ENABLES_AUTOMATIC_TRANSFER_CREATION="true",
        STRIPE_WEBHOOK_SECRET="whsec_old",
        MIRAKL_METADATA_ORDER_ID="order_key",
    )
    assert cfg["ENABLE_PRODUCT_PAYMENT_SPLIT"] is True
    assert cfg["STRIPE_SELLERS_WEBHOOK_SECRET"].reveal() == "whsec_old"
    assert cfg["STRIPE_OPERATOR_WEBHOOK_SECRET"].reveal() == "whsec_old"
    assert cfg["PAYMENT_METADATA_COMMERCIAL_ORDER_ID"] == "order_key"


def test_tax_split_without_a_tax_account_starts():
    """The reference starts and only holds the ``_TAX`` rows (see test_process_transfer)."""
    cfg = load(ENABLE_PAYMENT_TAX_SPLIT="true", STRIPE_TAX_ACCOUNT="")
    assert cfg["ENABLE_PAYMENT_TAX_SPLIT"] is True
    assert cfg["STRIPE_TAX_ACCOUNT"] == ""


@pytest.mark.parametrize(
    ("env", "name", "expected"),
    [
        (
            {"STRIPE_SELLERS_WEBHOOK_SECRET": "", "STRIPE_WEBHOOK_SECRET": "whsec_old"},
            "STRIPE_SELLERS_WEBHOOK_SECRET",
            "whsec_old",
        ),
        (
            {"STRIPE_OPERATOR_WEBHOOK_SECRET": " ", "STRIPE_WEBHOOK_SECRET": "whsec_old"},
            "STRIPE_OPERATOR_WEBHOOK_SECRET",
            "whsec_old",
        ),
        (
            {"STRIPE_SELLERS_WEBHOOK_SECRET": "whsec_new", "STRIPE_WEBHOOK_SECRET": "whsec_old"},
            "STRIPE_SELLERS_WEBHOOK_SECRET",
            "whsec_new",
        ),
        (
            {"ENABLE_PRODUCT_PAYMENT_SPLIT": "", "ENABLES_AUTOMATIC_TRANSFER_CREATION": "true"},
            "ENABLE_PRODUCT_PAYMENT_SPLIT",
            True,
        ),
        (
            {"ENABLE_PRODUCT_PAYMENT_REFUND": "", "ENABLES_AUTOMATIC_REFUND_CREATION": "true"},
            "ENABLE_PRODUCT_PAYMENT_REFUND",
            True,
        ),
        (
            {"PAYMENT_METADATA_COMMERCIAL_ORDER_ID": "", "MIRAKL_METADATA_ORDER_ID": "order_key"},
            "PAYMENT_METADATA_COMMERCIAL_ORDER_ID",
            "order_key",
        ),
        ({"ENABLE_PRODUCT_PAYMENT_SPLIT": ""}, "ENABLE_PRODUCT_PAYMENT_SPLIT", False),
    ],
)
def test_an_empty_variable_falls_back_on_its_deprecated_alias(env, name, expected):
    value = load(**env)[name]
    assert (value.reveal() if isinstance(value, Secret) else value) == expected


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+psycopg://u@db/app"),
        (
            "pgsql://symfony:symfony@db:5432/symfony?charset=UTF-8",
            "postgresql+psycopg://symfony:symfony@db:5432/symfony",
        ),
        (
            "postgresql://u@db/app?serverVersion=13&sslmode=require",
            "postgresql+psycopg://u@db/app?sslmode=require",
        ),
        ("sqlite:////var/data/c.db", "sqlite:////var/data/c.db"),
    ],
)
def test_database_url_forms(raw, url):
    assert normalize_database_url(raw) == url


def test_secrets_never_show_in_repr_or_str():
    cfg = load(MAILER_DSN="smtp://user:mailpass@smtp.example.com:587")
    text = repr(cfg) + str(cfg)
    for secret in ("operator-pass", "sk_test_123abc", "mirakl-secret-key", "mailpass"):
        assert secret not in text
    assert repr(Secret("abc")) == "Secret('***')"
    values = secret_values(cfg)
    assert {"operator-pass", "sk_test_123abc", "mirakl-secret-key", "mailpass"} <= set(values)


def test_the_session_key_is_app_secret():
    assert load(APP_SECRET="s3cret")["SECRET_KEY"] == "s3cret"


def test_production_refuses_to_start_without_app_secret():
    # Before: the key was derived from OPERATOR_PASSWORD and STRIPE_CLIENT_SECRET.
    with pytest.raises(ConfigError, match="^APP_SECRET is required when APP_ENV is prod"):
        load(APP_SECRET="")


@pytest.mark.parametrize("app_env", ["dev", "test"])
def test_outside_production_a_missing_key_is_generated_once_and_kept(app_env, tmp_path):
    env = {**REQUIRED, "APP_SECRET": "", "APP_ENV": app_env}
    first = load_config(env, instance_path=str(tmp_path))["SECRET_KEY"]
    again = load_config(env, instance_path=str(tmp_path))["SECRET_KEY"]

    assert first == again and len(first) == 64
    assert (tmp_path / "app_secret").stat().st_mode & 0o777 == 0o600
    for other in ("operator-pass", "sk_test_123abc"):
        assert other not in first
    other_instance = load_config(env, instance_path=str(tmp_path / "other"))["SECRET_KEY"]
    assert other_instance != first


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, None),
        ({"APP_SECRET": "short"}, "APP_SECRET is 5 characters long"),
        ({"APP_SECRET": "operator-pass-that-is-long-enough-00000"}, None),
        ({"APP_SECRET": "sk_test_123abc"}, "must not reuse"),
        ({"APP_SECRET": "", "APP_ENV": "dev"}, None),
    ],
)
def test_app_secret_problem_for_the_doctor(env, problem, tmp_path):
    cfg = load_config({**REQUIRED, **env}, instance_path=str(tmp_path))
    found = app_secret_problem(cfg)
    assert found == problem if problem is None else problem in found


def test_app_secret_problem_in_production_without_the_key():
    cfg = {**load(), "APP_SECRET": Secret(""), "DEBUG_ENV": False}
    assert "APP_SECRET is not set" in app_secret_problem(cfg)
